"""Turning command-line text into SDK values: ``key=value`` pairs, backend settings, the training target."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import types
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from kubeflow_trainer_cli.problems import BadInput


def parse_pairs(items: Iterable[str], what: str, *, json_values: bool = False) -> dict[str, Any]:
    """``["a=1", "b=x"]`` as a dict. With ``json_values`` a value that is valid JSON is decoded (``epochs=2`` is
    the number 2, ``names=["a"]`` a list); anything else stays a string."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{what} {item!r} is not KEY=VALUE; write it as e.g. {what} name=value")
        result[key.strip()] = _decode(value) if json_values else value
    return result


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def backend_config(backend: str, settings: Iterable[str]) -> Any:
    """The backend's config object with ``key=value`` settings validated against its config model, or None when
    no setting was given (the backend's defaults, as ``TrainerClient(backend=...)``)."""
    pairs = parse_pairs(settings, "--config", json_values=False)
    if not pairs:
        return None
    from pydantic import ValidationError

    from kubeflow_trainer.registry import default_registry

    spec = default_registry().get(backend)
    model = spec.config_class
    values = {key: _config_value(model, key, value) for key, value in pairs.items()}
    try:
        return model(**values)
    except ValidationError as exc:
        known = ", ".join(sorted(model.model_fields))
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}" for e in exc.errors())
        raise BadInput(
            f"--config for backend '{backend}' ({model.__name__}): {problems}. Settings it takes: {known}."
        ) from exc


def _config_value(model: Any, key: str, value: str) -> Any:
    """Strings stay strings for ``str`` fields; other fields get JSON-decoded values where the text is JSON
    (``"[1, 2]"``, ``"true"``, ``"5"``), so pydantic validates them as the field's type."""
    field = model.model_fields.get(key)
    if field is not None and field.annotation in (str, str | None):
        return value
    return _decode(value)


def load_function(target: str) -> Callable[..., Any]:
    """The function ``FILE.py:NAME`` names (``FILE.py`` alone: its function ``train``). The file is imported
    under a private module name, so its ``if __name__ == "__main__":`` block does not run."""
    path, _, name = target.partition(":")
    name = name or "train"
    if not os.path.isfile(path):
        raise BadInput(f"{path!r} is not a file; give the Python file that defines the training function")
    module_name = f"_kubeflow_trainer_cli_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise BadInput(f"{path!r} cannot be imported as Python; give a .py file")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # the file's own imports of its neighbours work as when it runs as a script
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise BadInput(f"importing {path} failed: {type(exc).__name__}: {exc}. Fix the file and run again.") from exc
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    func = getattr(module, name, None)
    if not isinstance(func, types.FunctionType):
        functions = sorted(
            n for n, v in vars(module).items() if isinstance(v, types.FunctionType) and v.__module__ == module_name
        )
        raise BadInput(
            f"{path} has no function {name!r}; name one with {path}:FUNCTION "
            f"(functions defined there: {', '.join(functions) or 'none'})"
        )
    return func
