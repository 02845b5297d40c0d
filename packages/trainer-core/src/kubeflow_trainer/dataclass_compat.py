"""Dataclass behaviour for the pydantic public types, as code written for upstream expects.

Upstream ``kubeflow.trainer`` types are ``@dataclass``es: they are built positionally
(``CustomTrainer(train)``, ``Runtime("name", trainer, kind)``) and passed to ``dataclasses.asdict``,
``dataclasses.fields`` and ``dataclasses.replace``. Ours stay pydantic v2 models (validation at construction,
``model_dump``); :class:`DataclassCompat` adds both behaviours:

- positional arguments bind to upstream's field order (``__positional_fields__``, default: the model's
  field order), then pydantic validates as usual;
- every subclass has a ``__dataclass_fields__`` mapping built from its pydantic fields (keyword-only
  ``dataclasses.Field`` objects with the same defaults), so ``dataclasses.is_dataclass``, ``fields``,
  ``asdict``, ``astuple`` and ``replace`` work on instances. It is built on first use (building it costs a
  ``dataclasses.make_dataclass`` per class, which ``import kubeflow_trainer`` must not pay).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pydantic import BaseModel


def dataclass_fields(model: type[BaseModel]) -> dict[str, dataclasses.Field[Any]]:
    """Keyword-only ``dataclasses.Field`` objects mirroring ``model``'s pydantic fields (same defaults)."""
    spec: list[tuple[str, Any, Any]] = []
    for name, info in model.model_fields.items():
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


setattr(DataclassCompat, "__dataclass_fields__", _LazyDataclassFields())  # noqa: B010 - after pydantic built the class
