"""How the training function reaches the job: by reference, or by source with the names it needs.

- **By reference**: a function defined at the top level of a module inside the job's workspace is imported
  from that module in the job (``from mypkg.train import train``), so the module's globals, helpers and
  imports are there as on the user's machine.
- **By source** (a notebook or ``__main__`` function, or no workspace): the function's source ships, and
  every global name it uses (in its body, nested functions, default values, annotations, decorators) is
  resolved at submit time:

  - builtins: nothing to do;
  - a module (``import numpy as np`` at the top of a notebook): shipped as ``import numpy as np`` when the
    module is installed (standard library or site-packages) or lives in the workspace;
  - a function or class importable from such a module: shipped as ``from module import name``;
  - a plain constant (numbers, strings, ``None``, and lists/tuples/dicts/sets of those): shipped as its
    literal (``SCALE = 3``);
  - anything else — an undefined name, a notebook helper function, a module of the user's project that is
    not in the workspace, an object with no literal form — refuses the job before anything starts with
    :class:`FreeNameError`, naming each and the fix. A job never fails with ``NameError`` 20 s in.
"""

from __future__ import annotations

import ast
import builtins
import dis
import inspect
import os
import sys
import sysconfig
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubeflow_trainer.errors import FreeNameError

__all__ = ["FreeNameError", "check_globals", "reference_module", "resolve_globals"]

_IN_JOB = frozenset({"kubeflow_trainer", "kubeflow_trainer.trainjob_status", "kubeflow_trainer.tpu"})
"""Modules every job has (the stand-in package of :mod:`kubeflow_trainer.jobside`), wherever the SDK is installed."""
_LITERAL_TYPES = (int, float, complex, str, bytes, bool, type(None), tuple, list, dict, set, frozenset)
_LITERAL_LIMIT = 10_000
"""Longest literal shipped for a constant (characters); larger values belong in func_args or a file."""


@dataclass
class Resolution:
    """What the by-source script needs before the function's ``def``: import lines and constant assignments."""

    lines: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)


def reference_module(func: Callable[..., Any], root: str | None, shipped: set[str]) -> str | None:
    """The module to import ``func`` from in the job, or None when it must ship by source.

    By reference when: a workspace is given, ``func`` is defined at the top level of a module (not
    ``__main__``) whose file ships with the workspace, and the module's dotted name is the file's path
    relative to the workspace root (``mypkg/train.py`` -> ``mypkg.train``)."""
    module = getattr(func, "__module__", None)
    if root is None or not module or module == "__main__" or func.__qualname__ != func.__name__:
        return None
    try:
        source = inspect.getsourcefile(func)
    except TypeError:
        return None
    if not source:
        return None
    rel = os.path.relpath(os.path.realpath(source), root)
    if rel.startswith("..") or os.path.isabs(rel):
        return None
    rel = rel.replace(os.sep, "/")
    if rel not in shipped or not rel.endswith(".py"):
        return None
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return module if parts and ".".join(parts) == module else None


def global_names(func: Callable[..., Any]) -> list[str]:
    """Global names ``func`` reads: in its code and nested code (``dis``: exact scoping), and in what the
    ``def`` statement evaluates (decorators, defaults, annotations: read from its source). Only names that
    appear in the source count, so names a tool added to the bytecode (pytest's assertion rewriting loads
    ``@py_builtins``) are not mistaken for the function's."""
    names: list[str] = []
    stored: set[str] = set()

    def visit(code: types.CodeType) -> None:
        local_stores = set()
        for instr in dis.get_instructions(code):
            if instr.opname == "STORE_GLOBAL":
                stored.add(instr.argval)
            elif instr.opname in ("STORE_NAME", "DELETE_NAME"):
                local_stores.add(instr.argval)
        for instr in dis.get_instructions(code):
            if instr.opname == "LOAD_GLOBAL" or (instr.opname == "LOAD_NAME" and instr.argval not in local_stores):
                name = instr.argval
                if isinstance(name, str) and name not in names:
                    names.append(name)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                visit(const)

    visit(func.__code__)
    in_source, def_time = _source_names(func)
    for name in def_time:
        if name not in names:
            names.append(name)
    return [n for n in names if n not in stored and n.isidentifier() and (in_source is None or n in in_source)]


def _source_names(func: Callable[..., Any]) -> tuple[set[str] | None, list[str]]:
    """(every name read in the function's source or None when it cannot be parsed, the names its ``def``
    statement evaluates)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return None, []
    node = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if node is None:
        return None, []
    everywhere = {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name)}
    evaluated: list[ast.AST] = list(node.decorator_list)
    args = node.args
    evaluated += [d for d in args.defaults] + [d for d in args.kw_defaults if d is not None]
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if arg is not None and arg.annotation is not None:
            evaluated.append(arg.annotation)
    if node.returns is not None:
        evaluated.append(node.returns)
    def_time = [
        sub.id
        for expr in evaluated
        for sub in ast.walk(expr)
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)
    ]
    return everywhere, def_time


def _installed_roots() -> list[str]:
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.realpath(path))
    for path in sys.path:
        if path and ("site-packages" in path or "dist-packages" in path):
            roots.add(os.path.realpath(path))
    return sorted(roots)


def _module_ok(module: types.ModuleType, root: str | None) -> str | None:
    """None when ``module`` will import in the job; else why not."""
    name = module.__name__
    if name == "__main__":
        return "is the notebook/script itself"
    if name in _IN_JOB:
        return None  # the SDK ships its in-job API into every job (kubeflow_trainer.jobside)
    file = getattr(module, "__file__", None)
    if not file:
        return None  # builtin or namespace module
    path = os.path.realpath(file)
    if root is not None and (path + os.sep).startswith(root + os.sep):
        return None
    if any(path.startswith(r + os.sep) for r in _installed_roots()):
        return None
    where = os.path.dirname(path)
    return (
        f"is module {name!r} of your project ({where}), which the job does not have; ship the project with "
        f"CustomTrainer(workspace={where!r}) or install it in the job (packages_to_install)"
    )


def _literal(value: Any) -> str | None:
    try:
        text = repr(value)
    except Exception:
        return None
    if len(text) > _LITERAL_LIMIT or not isinstance(
        value, (int, float, complex, str, bytes, bool, type(None), tuple, list, dict, set, frozenset)
    ):
        return None
    try:
        return text if ast.literal_eval(text) == value else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def resolve_globals(func: Callable[..., Any], root: str | None) -> Resolution:
    """How each global name ``func`` uses reaches the job (see the module docstring)."""
    result = Resolution()
    glb: dict[str, Any] = getattr(func, "__globals__", {})
    for name in global_names(func):
        if name == func.__name__ or (name.startswith("__") and name.endswith("__")):
            continue  # the function itself; module dunders (__name__, __file__...) the script has its own of
        if name not in glb:
            if hasattr(builtins, name):
                continue
            result.problems[name] = "is not defined"
            continue
        value = glb[name]
        if isinstance(value, types.ModuleType):
            problem = _module_ok(value, root)
            if problem:
                result.problems[name] = problem
            elif value.__name__ == name:
                result.lines.append(f"import {name}")
            else:
                result.lines.append(f"import {value.__name__} as {name}")
            continue
        owner = getattr(value, "__module__", None)
        qualname = getattr(value, "__qualname__", None)
        if (
            isinstance(owner, str)
            and isinstance(qualname, str)
            and (inspect.isfunction(value) or inspect.isclass(value) or callable(value))
        ):
            mod = sys.modules.get(owner)
            if (
                mod is not None
                and owner != "__main__"
                and "." not in qualname
                and getattr(mod, qualname, None) is value
            ):
                problem = _module_ok(mod, root)
                if problem is None:
                    result.lines.append(f"from {owner} import {qualname}" + (f" as {name}" if name != qualname else ""))
                    continue
                result.problems[name] = f"comes from module {owner!r}, which " + problem.removeprefix("is ")
                continue
            if inspect.isfunction(value) or inspect.isclass(value):
                result.problems[name] = (
                    f"is a {'function' if inspect.isfunction(value) else 'class'} defined in the notebook/script; "
                    "define it inside the training function or move it to a module of the workspace"
                )
                continue
        literal = _literal(value)
        if literal is not None:
            result.lines.append(f"{name} = {literal}")
            continue
        result.problems[name] = (
            f"is a {type(value).__name__} with no literal form; pass it through func_args or build it inside the "
            "function"
        )
    return result


def check_globals(func: Callable[..., Any], root: str | None) -> list[str]:
    """The lines the by-source script needs; raises :class:`FreeNameError` naming what cannot reach the job."""
    resolution = resolve_globals(func, root)
    if resolution.problems:
        detail = "; ".join(f"{name!r} {why}" for name, why in resolution.problems.items())
        raise FreeNameError(
            f"function {func.__name__!r} uses names that would not exist in the job: {detail}. Fix: import "
            "modules inside the function, pass values with func_args, or define the function in a module of "
            "the job's workspace (CustomTrainer(workspace=...)) so it runs by reference with its module",
            tuple(resolution.problems),
        )
    return resolution.lines
