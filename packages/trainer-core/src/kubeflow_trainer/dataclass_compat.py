"""Dataclass behaviour for the pydantic public types, as code written for upstream expects.

Upstream ``kubeflow.trainer`` types are ``@dataclass``es: they are built positionally
(``CustomTrainer(train)``, ``Runtime("name", trainer, kind)``) and passed to ``dataclasses.asdict``,
``dataclasses.fields`` and ``dataclasses.replace``. Ours stay pydantic v2 models (validation at construction,
``model_dump``); :class:`DataclassCompat` adds both behaviours:

- positional arguments bind to upstream's field order (``__positional_fields__``, default: the model's
  field order), then pydantic validates as usual;
- ``inspect.signature`` shows upstream's parameters (the positional fields, then ours keyword-only);
- every subclass has a ``__dataclass_fields__`` mapping built from its pydantic fields (keyword-only
  ``dataclasses.Field`` objects with the same defaults), so ``dataclasses.is_dataclass``, ``fields``,
  ``asdict``, ``astuple`` and ``replace`` work on instances. It is built on first use (building it costs a
  ``dataclasses.make_dataclass`` per class, which ``import kubeflow_trainer`` must not pay).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, ClassVar

from pydantic import BaseModel


def field_order(model: type[BaseModel]) -> list[str]:
    """``model``'s field names: the positional ones (upstream's order) first, then the others."""
    positional = list(getattr(model, "__positional_fields__", None) or ())
    return positional + [name for name in model.model_fields if name not in positional]


class _Factory:
    """The default shown for a field with a default factory, as ``inspect.signature`` shows a dataclass's."""

    def __repr__(self) -> str:
        return "<factory>"


FACTORY = _Factory()


def signature(model: type[BaseModel]) -> inspect.Signature:
    """The call signature upstream's dataclass would have: positional fields first, the others keyword-only."""
    positional = set(getattr(model, "__positional_fields__", None) or model.model_fields)
    parameters: list[inspect.Parameter] = []
    seen_default = False
    for name in field_order(model):
        info = model.model_fields[name]
        default: Any = inspect.Parameter.empty
        if info.default_factory is not None:
            default = FACTORY
        elif not info.is_required():
            default = info.default
        kind: inspect._ParameterKind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        if name not in positional or (seen_default and default is inspect.Parameter.empty):
            kind = inspect.Parameter.KEYWORD_ONLY
            positional = set()  # every later parameter is keyword-only too
        seen_default = seen_default or default is not inspect.Parameter.empty
        annotation = inspect.Parameter.empty if info.annotation is None else info.annotation
        parameters.append(inspect.Parameter(name, kind, default=default, annotation=annotation))
    return inspect.Signature(parameters)


def dataclass_fields(model: type[BaseModel]) -> dict[str, dataclasses.Field[Any]]:
    """Keyword-only ``dataclasses.Field`` objects mirroring ``model``'s pydantic fields (same defaults)."""
    spec: list[tuple[str, Any, Any]] = []
    for name in field_order(model):
        info = model.model_fields[name]
        if info.default_factory is not None:
            default: Any = dataclasses.field(default_factory=info.default_factory)  # type: ignore[arg-type]
        elif info.is_required():
            default = dataclasses.field()
        else:
            default = dataclasses.field(default=info.default)
        spec.append((name, Any if info.annotation is None else info.annotation, default))
    shadow = dataclasses.make_dataclass(model.__name__, spec, kw_only=True)
    fields: dict[str, dataclasses.Field[Any]] = dict(getattr(shadow, "__dataclass_fields__"))  # noqa: B009
    return fields


class _LazyDataclassFields:
    """Class attribute ``__dataclass_fields__``: built for the class it is read from (each subclass its own),
    once."""

    def __init__(self) -> None:
        self._built: dict[type[BaseModel], dict[str, dataclasses.Field[Any]]] = {}

    def __get__(self, instance: object, owner: type[BaseModel]) -> dict[str, dataclasses.Field[Any]]:
        if owner not in self._built:
            self._built[owner] = dataclass_fields(owner)
        return self._built[owner]


class _LazySignature:
    """Class attribute ``__signature__`` (what ``inspect.signature`` reads): built on first use."""

    def __init__(self) -> None:
        self._built: dict[type[BaseModel], inspect.Signature] = {}

    def __get__(self, instance: object, owner: type[BaseModel]) -> inspect.Signature:
        if owner not in self._built:
            self._built[owner] = signature(owner)
        return self._built[owner]


_SIGNATURE = _LazySignature()


class DataclassCompat(BaseModel):
    """Base of the public types: pydantic model plus upstream's dataclass calling conventions."""

    __positional_fields__: ClassVar[tuple[str, ...] | None] = None
    """Field names that positional arguments bind to, in order (upstream's dataclass field order)."""

    def __init__(self, /, *args: Any, **data: Any) -> None:
        if args:
            cls = type(self)
            order = cls.__positional_fields__ or tuple(cls.model_fields)
            if len(args) > len(order):
                raise TypeError(
                    f"{cls.__name__}() takes at most {len(order)} positional arguments ({', '.join(order)}) "
                    f"but {len(args)} were given; pass the others by keyword"
                )
            for name, value in zip(order, args, strict=False):
                if name in data:
                    raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
                data[name] = value
        super().__init__(**data)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # pydantic derives each model's signature from __init__ (here: *args, **data); show the fields instead
        setattr(cls, "__signature__", _SIGNATURE)  # noqa: B010

    @classmethod
    def __pydantic_on_complete__(cls) -> None:
        # a deferred build (defer_build=True) sets pydantic's signature again when the model is first used
        super().__pydantic_on_complete__()
        setattr(cls, "__signature__", _SIGNATURE)  # noqa: B010


setattr(DataclassCompat, "__dataclass_fields__", _LazyDataclassFields())  # noqa: B010 - after pydantic built the class
