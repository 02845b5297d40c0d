"""Why a job failed, in one line a practitioner can act on (backend side; standard library only).

The job side records an uncaught exception of the user's function in **torchrun's error file**: the
generated ``train.py`` (:func:`kubeflow_trainer.shipping.build_script`) writes the JSON that
``torch.distributed.elastic.multiprocessing.errors.record`` writes, to the path in ``TORCHELASTIC_ERROR_FILE``
(torchrun gives each worker one), plus our own fields under ``message.extraInfo.kft``: the exception type and
text, the file, line, function and source line inside the user's function (mapped back to the user's own
file), the rank and a precise time. torchrun's ``@record``-wrapped ``main`` then copies the worker that failed
first into *its* ``TORCHELASTIC_ERROR_FILE``, which the backend sets per node (:data:`ERROR_FILE_ENV`). The
backend reads the node files, keeps the earliest (:func:`first_failure`) and shows :meth:`Failure.describe`
as the failed step's message; ``JobFailedError`` leads with it.

Where no error file can be read, :func:`from_log` finds the last Python traceback in a step's log.
:func:`environment_failure` names the requirement an installer (uv or pip) could not resolve, and
:func:`exit_reason` says what an exit code means (137: killed, most often out of memory).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

ERROR_FILE_ENV = "TORCHELASTIC_ERROR_FILE"
"""Environment variable naming the error file (torchrun's; the backends set it on each node's torchrun)."""

MESSAGE_LIMIT = 1000
"""Longest exception text kept in a step message (the whole traceback stays in the logs)."""


@dataclass(frozen=True)
class Failure:
    """An uncaught exception of the user's code, as recorded in the job."""

    exc_type: str
    text: str
    file: str | None = None
    line: int | None = None
    function: str | None = None
    code: str | None = None
    rank: int | None = None
    time: float | None = None

    def describe(self) -> str:
        """``rank 1: ModuleNotFoundError: No module named 'helpers' (File "x.py", line 7, in train: import
        helpers)`` (one line)."""
        text = " ".join(self.text.split())
        if len(text) > MESSAGE_LIMIT:
            text = text[:MESSAGE_LIMIT] + "..."
        head = f"rank {self.rank}: " if self.rank is not None else ""
        where = ""
        if self.file and self.line:
            where = f' (File "{self.file}", line {self.line}' + (f", in {self.function}" if self.function else "")
            where += f": {self.code.strip()})" if self.code else ")"
        return f"{head}{self.exc_type}: {text}{where}" if text else f"{head}{self.exc_type}{where}"


def parse_error_file(data: str | bytes | None) -> Failure | None:
    """The failure in an error file's text (torchrun's format, with or without our ``kft`` fields)."""
    if not data:
        return None
    try:
        doc = json.loads(data)
        message = doc["message"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(message, str):
        return _from_text(message)
    if not isinstance(message, dict):
        return None
    extra = message.get("extraInfo") or {}
    kft = extra.get("kft")
    if isinstance(kft, dict) and kft.get("type"):
        return Failure(
            exc_type=str(kft["type"]),
            text=str(kft.get("text") or ""),
            file=kft.get("file"),
            line=kft.get("line"),
            function=kft.get("function"),
            code=kft.get("code"),
            rank=kft.get("rank"),
            time=kft.get("time"),
        )
    found = from_log(str(extra.get("py_callstack") or "").splitlines())
    if found is not None:
        return found
    return _from_text(str(message.get("message") or ""))


def _from_text(text: str) -> Failure | None:
    exc_type, sep, rest = text.partition(": ")
    if not sep or not _EXC_LINE.match(text):
        return Failure(exc_type="Error", text=text) if text else None
    return Failure(exc_type=exc_type, text=rest)


def first_failure(failures: Iterable[Failure | None]) -> Failure | None:
    """The failure recorded first (those without a time last)."""
    found = [f for f in failures if f is not None]
    if not found:
        return None
    return min(found, key=lambda f: (f.time is None, f.time or 0.0, f.rank or 0))


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning|Failure|Fault))(?::\s?(.*))?$")
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)')
_RANK_PREFIX = re.compile(r"^\[(?:rank|default)(\d+)\]:\s?")


def from_log(lines: Iterable[str]) -> Failure | None:
    """The last Python traceback in log ``lines``: its exception and the innermost frame of the job's
    ``train.py`` (else the innermost frame). torchrun's ``[rankN]:`` prefixes are understood."""
    found: Failure | None = None
    found_in_script: Failure | None = None
    frames: list[tuple[str, int, str, str | None]] = []
    in_tb = False
    rank: int | None = None
    pending_code: int | None = None
    for raw in lines:
        prefix = _RANK_PREFIX.match(raw)
        line = raw[prefix.end() :] if prefix else raw
        if line.startswith("Traceback (most recent call last):"):
            in_tb, frames, pending_code = True, [], None
            rank = int(prefix.group(1)) if prefix else None
            continue
        if not in_tb:
            continue
        frame = _FRAME.match(line)
        if frame:
            frames.append((frame.group(1), int(frame.group(2)), frame.group(3), None))
            pending_code = len(frames) - 1
            continue
        if (
            pending_code is not None
            and line.startswith("    ")
            and line.strip()
            and not set(line.strip()) <= {"^", "~"}
        ):
            file, lineno, func, _ = frames[pending_code]
            frames[pending_code] = (file, lineno, func, line.strip())
            pending_code = None
            continue
        if line.startswith(" ") or not line.strip():
            continue
        exc = _EXC_LINE.match(line)
        if exc:
            user = [f for f in frames if f[0].endswith("train.py") and f[2] != "<module>"] or frames[-1:]
            exc_type, text = exc.group(1).rsplit(".", 1)[-1], exc.group(2) or ""
            in_script = any(f[0].endswith("train.py") for f in frames)
            if user:
                file, lineno, func, code = user[-1]
                candidate = Failure(exc_type, text, file, lineno, func, code, rank)
            else:
                candidate = Failure(exc_type, text, rank=rank)
            if in_script or found_in_script is None:
                found = candidate  # torchrun's own traceback (ChildFailedError) never hides the script's
            if in_script:
                found_in_script = candidate
        in_tb = False
    return found


_UV_NOT_FOUND = re.compile(r"Because (\S+) was not found in the package registry")
_UV_NO_VERSION = re.compile(r"Because there (?:is|are) no versions? of (\S+?)(?: and|,| \w+ )")
_DECORATION = " \u2570\u2500\u25b6\u00d7"
"""The box-drawing arrows and cross uv draws before its error lines."""
_PIP_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_PIP_NO_VERSION = re.compile(r"Could not find a version that satisfies the requirement (\S+)")


def environment_failure(output: str) -> str | None:
    """``the requirement 'X' could not be resolved: <installer line>`` from uv's or pip's output, or None."""
    for pattern in (_UV_NOT_FOUND, _UV_NO_VERSION, _PIP_NO_MATCH, _PIP_NO_VERSION):
        found = pattern.search(output)
        if found:
            requirement = found.group(1).rstrip(".,")
            line = next((s.strip(_DECORATION) for s in output.splitlines() if found.group(0) in s), found.group(0))
            return f"the requirement '{requirement}' could not be resolved: {line.strip()}"
    if "No solution found when resolving dependencies" in output:
        detail = [
            s.strip(_DECORATION) for s in output.splitlines() if s.strip().startswith(("\u2570\u2500\u25b6", "Because"))
        ]
        return "the packages could not be resolved together" + (f": {detail[0].strip()}" if detail else "")
    return None


OOM_EXIT = 137
"""128 + SIGKILL: what a container or process killed by the kernel's OOM killer exits with."""


def exit_reason(exit_code: int | None, oom_killed: bool = False) -> str:
    """What an exit code means: ``out of memory`` for OOM kills (and, hedged, any exit 137)."""
    if oom_killed:
        return (
            f"killed because it ran out of memory (OOMKilled, exit code {exit_code if exit_code is not None else 137})"
            "; raise the memory limit (resources_per_node) or use less memory"
        )
    if exit_code is None:
        return "exited"
    if exit_code in (OOM_EXIT, -9):
        return (
            f"killed by SIGKILL (exit code {exit_code}), most often because it ran out of memory; raise the "
            "memory limit or use less memory"
        )
    if exit_code < 0:
        import signal

        try:
            return f"killed by signal {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"killed by signal {-exit_code}"
    return f"exited with code {exit_code}"
