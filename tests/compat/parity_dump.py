"""Dump the public surface of ``kubeflow.trainer`` (upstream) or ``kubeflow_trainer`` (ours) as JSON.

Run by test_parity.py under each interpreter: ``python parity_dump.py <module> [<module> ...]``. Module
names are upstream's (``kubeflow.trainer.options``); for ours the prefix is rewritten. Only the standard
library is used, so the same file runs in upstream's venv.

For every public name of each module: its kind; for callables the parameters of ``inspect.signature``
(name, kind, default); for classes also their fields (dataclass or pydantic: name, default, order), enum
members and public methods' parameters; for plain constants their value.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import json
import sys
from typing import Any

OURS = "kubeflow_trainer"
UPSTREAM = "kubeflow.trainer"


def norm(text: str) -> str:
    """Reprs mention module paths; compare them in our spelling."""
    return text.replace(UPSTREAM, OURS)


def params(obj: Any) -> list[list[str]] | str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError) as exc:
        return f"<no signature: {exc}>"
    return [
        [p.name, p.kind.name, "<required>" if p.default is inspect.Parameter.empty else norm(repr(p.default))]
        for p in sig.parameters.values()
    ]


def fields(cls: type) -> list[list[str]] | None:
    if dataclasses.is_dataclass(cls):
        out = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                default = norm(repr(f.default))
            elif f.default_factory is not dataclasses.MISSING:
                default = norm(repr(f.default_factory()))
            else:
                default = "<required>"
            out.append([f.name, default])
        return out
    model_fields = getattr(cls, "model_fields", None)
    if isinstance(model_fields, dict) and model_fields:
        out = []
        for name, info in model_fields.items():
            if info.is_required():
                default = "<required>"
            elif info.default_factory is not None:
                try:
                    default = norm(repr(info.default_factory()))
                except TypeError:
                    default = "<factory>"
            else:
                default = norm(repr(info.default))
            out.append([name, default])
        return out
    return None


def describe(obj: Any) -> dict[str, Any]:
    if inspect.ismodule(obj):
        return {"kind": "module"}
    if inspect.isclass(obj):
        info: dict[str, Any] = {"kind": "class", "bases": [norm(b.__name__) for b in obj.__mro__[1:-1]]}
        if issubclass(obj, enum.Enum):
            info["kind"] = "enum"
            info["members"] = {m.name: norm(repr(m.value)) for m in obj}
            return info
        info["fields"] = fields(obj)
        info["init"] = params(obj)
        methods = {}
        for name, member in inspect.getmembers(obj):
            if name.startswith("_") or not callable(member) or name.startswith("model_"):
                continue
            if any(
                name in vars(base)
                for base in obj.__mro__[1:]
                if base.__module__.split(".")[0] in {"builtins", "pydantic", "abc", "enum"}
            ):
                continue
            methods[name] = params(member)
        info["methods"] = methods
        return info
    if callable(obj):
        return {"kind": "function", "params": params(obj)}
    if isinstance(obj, (str, int, float, bool, type(None), tuple, list, dict, frozenset, set)):
        return {"kind": "constant", "value": norm(repr(obj))}
    return {"kind": "object", "type": norm(type(obj).__name__)}


def public_names(mod: Any) -> list[str]:
    names = getattr(mod, "__all__", None)
    if names is not None:
        return sorted(names)
    out = []
    for name, value in vars(mod).items():
        if name.startswith("_"):
            continue
        if inspect.ismodule(value):
            if value.__name__.startswith(mod.__name__ + "."):
                out.append(name)  # a submodule examples import by name (``from ...constants import constants``)
            continue
        home = getattr(value, "__module__", None)
        if (inspect.isclass(value) or callable(value)) and not (home or "").startswith(("kubeflow", OURS)):
            continue  # imported helpers (typing, dataclasses, ...), not this module's API
        out.append(name)
    return sorted(out)


def dump(module: str, ours: bool) -> dict[str, Any]:
    name = module.replace(UPSTREAM, OURS, 1) if ours else module
    try:
        mod = importlib.import_module(name)
    except Exception as exc:  # a missing module is a result, not a crash
        return {"error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {}
    for attr in public_names(mod):
        try:
            out[attr] = describe(getattr(mod, attr))
        except Exception as exc:
            out[attr] = {"kind": "error", "error": f"{type(exc).__name__}: {exc}"}
    return out


def main() -> int:
    ours = "--ours" in sys.argv
    modules = [a for a in sys.argv[1:] if not a.startswith("--")]
    json.dump({m: dump(m, ours) for m in modules}, sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
