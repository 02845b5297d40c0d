"""Safe function shipping: the user's training function becomes a Python file, never a shell string.

The generated file holds the function's source (dedented) and its arguments as a JSON literal, and calls
``func(**func_args)`` — the calling convention on every backend. Nothing of it is interpreted by a shell,
so ``$VAR``, backticks and quotes in user code reach Python unchanged.

Rules (checked when a :class:`~kubeflow_trainer.types.CustomTrainer` is built, before anything starts):

- ``func`` is a plain function defined with ``def`` (not a lambda, not a builtin, not a bound method) whose
  source can be read (defined in a file or a notebook cell).
- It does not close over variables of an enclosing function (they would not exist in the job).
- Names it uses from around it (module-level constants, modules imported at the top of a notebook) are
  resolved at submit time (:mod:`kubeflow_trainer.funcref`): shipped with the script or refused.
- With a workspace, a function defined in one of the workspace's modules runs by reference.
- ``func_args`` is a dict with string keys whose values JSON can encode; the call ``func(**func_args)``
  must bind to the function's signature.
"""

from __future__ import annotations

import inspect
import json
import textwrap
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubeflow_trainer.workspace import WorkspaceSnapshot

SCRIPT_NAME = "train.py"
"""File name of the generated script in the job's workspace."""


def validate_function(func: Any) -> Callable[..., Any]:
    """Check that ``func`` can be shipped; raise ``ValueError`` saying what to change otherwise."""
    if not callable(func):
        raise ValueError(f"func must be a function defined with 'def'; got {type(func).__name__} {func!r}")
    if isinstance(func, types.MethodType):
        raise ValueError(f"func {func.__qualname__!r} is a bound method; pass a plain module-level function instead")
    if not isinstance(func, types.FunctionType):
        raise ValueError(
            f"func must be a Python function defined with 'def'; got {type(func).__name__} "
            f"{getattr(func, '__name__', func)!r}"
        )
    if func.__name__ == "<lambda>":
        raise ValueError("func must be defined with 'def', not a lambda: the job needs its source under a name")
    if func.__code__.co_freevars:
        raise ValueError(
            f"func {func.__name__!r} uses variables of an enclosing function "
            f"({', '.join(func.__code__.co_freevars)}); pass them through func_args instead"
        )
    function_source(func)  # raises when the source cannot be read
    return func


def function_source(func: Callable[..., Any]) -> str:
    """The dedented source of ``func``."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError) as exc:
        raise ValueError(
            f"cannot read the source of func {getattr(func, '__name__', func)!r} ({exc}); define it in a .py "
            "file or a notebook cell"
        ) from exc
    return textwrap.dedent(source)


def validate_func_args(func: Callable[..., Any] | None, func_args: Any) -> dict[str, Any] | None:
    """Check that ``func_args`` is JSON-serialisable and binds to ``func``'s signature."""
    if func_args is None:
        if func is not None:
            try:
                inspect.signature(func).bind()
            except TypeError as exc:
                raise ValueError(
                    f"func {func.__name__}{inspect.signature(func)} needs arguments: {exc}; pass them with func_args"
                ) from exc
        return None
    if not isinstance(func_args, dict):
        raise ValueError(f"func_args must be a dict of keyword arguments; got {type(func_args).__name__}")
    bad_keys = [k for k in func_args if not isinstance(k, str) or not k.isidentifier()]
    if bad_keys:
        raise ValueError(f"func_args keys must be Python identifiers (they are passed as **kwargs); got {bad_keys}")
    try:
        json.dumps(func_args, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"func_args cannot be serialized to JSON ({exc}); pass plain values (str, int, float, bool, "
            "None, lists and dicts of those)"
        ) from exc
    if func is not None:
        try:
            inspect.signature(func).bind(**func_args)
        except TypeError as exc:
            raise ValueError(
                f"func_args do not match the signature of {func.__name__}{inspect.signature(func)}: {exc}"
            ) from exc
    return func_args


RECORDER = '''
def _kft_record(exc, origin, first_line, source_start):
    """Record an uncaught exception where the SDK reads it: torchrun's error file (TORCHELASTIC_ERROR_FILE,
    the JSON torch's errors.record writes, plus the user's file and line) and, in a Kubernetes container,
    the termination message. Written by the Kubeflow Trainer SDK; the traceback still goes to the log.
    ``origin`` is None for a function run by reference: its frames are the workspace's own files."""
    import json, os, time, traceback

    if isinstance(exc, (SystemExit, KeyboardInterrupt)):
        return
    here = os.path.abspath(__file__)
    tb = traceback.extract_tb(exc.__traceback__)
    kft = {"type": type(exc).__name__, "text": str(exc), "time": time.time()}
    if origin is None:
        root = os.getcwd()
        frames = [
            f for f in tb
            if os.path.abspath(f.filename).startswith(root + os.sep) and os.path.abspath(f.filename) != here
        ]
        if frames:
            frame = frames[-1]
            kft.update(
                file=os.path.relpath(os.path.abspath(frame.filename), root),
                line=frame.lineno,
                function=frame.name,
                code=(frame.line or "").strip(),
            )
    else:
        frames = [f for f in tb if os.path.abspath(f.filename) == here]
        if frames:
            frame = frames[-1]
            inside = frame.name != "<module>"
            kft.update(
                file=origin if inside else here,
                line=first_line + frame.lineno - source_start if inside else frame.lineno,
                function=frame.name,
                code=(frame.line or "").strip(),
            )
    if os.environ.get("RANK", "").isdigit():
        kft["rank"] = int(os.environ["RANK"])
    info = {"py_callstack": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            "timestamp": str(int(kft["time"])), "kft": kft}
    doc = {"message": {"message": kft["type"] + ": " + kft["text"], "extraInfo": info}}
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    try:
        if path:
            with open(path, "w") as fh:
                json.dump(doc, fh)
        term = os.environ.get("KFT_TERMINATION_LOG", "/dev/termination-log")
        if os.path.isfile(term):
            kft["text"] = kft["text"][:600]
            del info["py_callstack"]
            with open(term, "a") as fh:
                fh.write(json.dumps(doc) + "\\n")
        exc._kft_recorded = True
    except Exception:
        pass
'''
"""The function the generated script calls when the user's function raises (standard library only)."""


def build_script(
    func: Callable[..., Any], func_args: dict[str, Any] | None, workspace: WorkspaceSnapshot | None = None
) -> str:
    """The Python file that runs ``func(**func_args)``; an exception it raises is recorded (:data:`RECORDER`,
    read back by :mod:`kubeflow_trainer.rootcause`) with the line in the user's own file, then re-raised.

    With a workspace, the job's working directory (the workspace root) goes on ``sys.path`` and a function
    defined in a module of the workspace is imported from it (by reference); otherwise the function's
    source ships with the names it needs (:mod:`kubeflow_trainer.funcref`; refused before anything starts
    when one cannot reach the job)."""
    from kubeflow_trainer.funcref import check_globals, reference_module

    args_json = json.dumps(func_args or {}, allow_nan=True, sort_keys=True)
    head = "# Generated by the Kubeflow Trainer SDK: the user's training function and its arguments.\n"
    if workspace is not None:
        head += (
            "import os as _kft_os\nimport sys as _kft_sys\n\n"
            "# The working directory is the workspace root: make its modules importable.\n"
            "_kft_sys.path.insert(1, _kft_os.getcwd())\n"
        )
    root = workspace.root if workspace is not None else None
    shipped = {f.path for f in workspace.files} if workspace is not None else set()
    module = reference_module(func, root, shipped)
    if module is not None:
        return (
            f"{head}\n{RECORDER}\n\n"
            'if __name__ == "__main__":\n'
            "    import importlib as _kft_importlib\n"
            "    import json as _kft_json\n\n"
            f"    _kft_args = _kft_json.loads({args_json!r})\n"
            "    try:\n"
            f"        _kft_func = getattr(_kft_importlib.import_module({module!r}), {func.__name__!r})\n"
            "        _kft_func(**_kft_args)\n"
            "    except BaseException as _kft_exc:\n"
            "        _kft_record(_kft_exc, None, 0, 0)\n"
            "        raise\n"
        )
    needs = check_globals(func, root)
    source = function_source(func)
    prelude = "".join(f"{line}\n" for line in needs)
    before = f"{head}{prelude}\n"
    source_start = before.count("\n") + 1
    code = func.__code__
    return (
        f"{before}{source.rstrip()}\n\n"
        f"{RECORDER}\n\n"
        'if __name__ == "__main__":\n'
        "    import json as _kft_json\n\n"
        f"    _kft_args = _kft_json.loads({args_json!r})\n"
        "    try:\n"
        f"        {func.__name__}(**_kft_args)\n"
        "    except BaseException as _kft_exc:\n"
        f"        _kft_record(_kft_exc, {code.co_filename!r}, {code.co_firstlineno}, {source_start})\n"
        "        raise\n"
    )


_RECORD_RESTART = """\
    import os as _kft_os

    _kft_restart = int(_kft_os.environ.get("TORCHELASTIC_RESTART_COUNT") or 0)
    _kft_status = _kft_os.environ.get("KUBEFLOW_TRAINER_STATUS_FILE")
    _kft_records = _kft_os.environ.get("KUBEFLOW_TRAINER_RESTART_RECORDS")
    if _kft_restart and (_kft_status or _kft_records) and _kft_os.environ.get("LOCAL_RANK", "0") == "0":
        import time as _kft_time

        _kft_rank = _kft_os.environ.get("KUBEFLOW_TRAINER_NODE_RANK") or _kft_os.environ.get("GROUP_RANK")
        _kft_node = "node-" + (_kft_rank or "0")
        if _kft_records:
            if _kft_os.path.isfile(_kft_records):  # made by the platform (the kubelet); never created here
                with open(_kft_records, "a") as _kft_fh:
                    _kft_fh.write(f"kft-restart {_kft_restart} {_kft_time.time()}\\n")
        else:
            _kft_dir = _kft_os.path.join(_kft_os.path.dirname(_kft_status), "restarts")
            _kft_os.makedirs(_kft_dir, exist_ok=True)
            with open(_kft_os.path.join(_kft_dir, _kft_node), "a") as _kft_fh:
                _kft_fh.write(f"{_kft_restart} {_kft_time.time()}\\n")
        _kft_why = f"torchrun restarted the workers after a failure (restart {_kft_restart})"
        print(f"[kubeflow-trainer] {_kft_node}: {_kft_why}", flush=True)
"""


def with_restart_record(script: str) -> str:
    """``script`` (from :func:`build_script`) that, when torchrun restarted its workers, records the restart for
    the backend (see :mod:`kubeflow_trainer.restarts`) and says so in the node's log."""
    main = 'if __name__ == "__main__":\n'
    if main not in script or "_kft_restart" in script:
        return script
    return script.replace(main, main + _RECORD_RESTART + "\n", 1)
