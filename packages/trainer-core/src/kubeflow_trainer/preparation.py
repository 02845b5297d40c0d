"""Numbers for a job's preparation, read from what its tools print (standard library only).

:class:`InstallerProgress` follows an installer's output (uv's or pip's, as the local backend's environment
log and the container launcher's log hold them) and says how far it is as a
:class:`~kubeflow_trainer.types.Preparation`: packages resolved, downloaded and installed, and the download
under way. Backends put it on ``TrainJob.preparation``; :mod:`kubeflow_trainer.progress` displays it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubeflow_trainer.types import Preparation

_RESOLVED = re.compile(r"^Resolved (\d+) packages?")
_PREPARED = re.compile(r"^Prepared (\d+) packages?")
_INSTALLED = re.compile(r"^(?:Installed|Uninstalled) (\d+) packages?")
_UV_DOWNLOADING = re.compile(r"^Downloading (\S+) \(([^)]+)\)")
_UV_DOWNLOADED = re.compile(r"^\s*Downloaded (\S+)")
_PIP_COLLECTING = re.compile(r"^Collecting (\S+)")
_PIP_DOWNLOADING = re.compile(r"^\s*Downloading (\S+?)(?:-\d[^ ]*)? \(([^)]+)\)")
_PIP_INSTALLING = re.compile(r"^Installing collected packages: (.+)")
_PIP_DONE = re.compile(r"^Successfully installed (.+)")
_UV_COMPILED = re.compile(r"^Bytecode compiled (\d+) files?")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_INIT_PROGRESS = re.compile(
    r"^\[(?P<step>[^\]\s]+)\] progress: (?P<files>\d+)(?:/(?P<files_total>\d+))? files, "
    r"(?P<bytes>\d+)(?:/(?P<bytes_total>\d+))? bytes$"
)


def initializer_progress(lines: Iterable[str]) -> Preparation | None:
    """How far a running initializer step is, from the last progress line of its log (the initializer runner
    prints ``[<step>] progress: 3/10 files, 1200/4000 bytes`` once a second): bytes fetched of the total, files
    in the detail. None when the log has no such line yet (or the step is not the SDK's initializer runner)."""
    from kubeflow_trainer.types import Preparation

    last = None
    for line in lines:
        if " progress: " in line:
            last = _INIT_PROGRESS.match(line.strip()) or last
    if last is None:
        return None
    files = last["files"] + (f"/{last['files_total']}" if last["files_total"] is not None else "")
    total = int(last["bytes_total"]) if last["bytes_total"] is not None else None
    return Preparation(
        phase="initializing",
        done=int(last["bytes"]),
        total=total,
        unit="bytes",
        detail=f"{last['step']}: {files} files",
    )


class InstallerProgress:
    """Feed it an installer's output lines (:meth:`feed`); :meth:`preparation` says where it is."""

    def __init__(self, compiles_bytecode: bool = False) -> None:
        self.compiles_bytecode = compiles_bytecode
        """The installer compiles bytecode after installing (uv's ``--compile-bytecode``): a phase of its own,
        often the longest (torch: about 5,600 files)."""
        self.total: int | None = None
        self.collected = 0
        self.downloaded = 0
        self.installed: int | None = None
        self.downloading = ""
        self.phase = "resolving packages"

    def feed(self, line: str) -> bool:
        """Take one line; True when the progress changed."""
        before = (self.phase, self.total, self.collected, self.downloaded, self.installed, self.downloading)
        line = _ANSI.sub("", line).rstrip()  # an installer told to colour its output anyway
        if line.startswith("$ ") and "--compile-bytecode" in line:  # the command, as the local backend logs it
            self.compiles_bytecode = True
        if m := _RESOLVED.match(line):
            self.total, self.phase = int(m.group(1)), "downloading packages"
        elif m := _UV_DOWNLOADING.match(line):
            self.downloading = f"{m.group(1)}, {m.group(2)}"
        elif m := _UV_DOWNLOADED.match(line):
            self.downloaded += 1
            self.downloading = ""
        elif m := _PREPARED.match(line):
            self.downloaded, self.phase, self.downloading = int(m.group(1)), "installing packages", ""
        elif (m := _INSTALLED.match(line)) and line.startswith("Installed"):
            self.installed = int(m.group(1))
            self.phase = "compiling bytecode" if self.compiles_bytecode else "installed packages"
        elif _UV_COMPILED.match(line):
            self.phase = "installed packages"
        elif m := _PIP_COLLECTING.match(line):
            self.collected += 1
        elif m := _PIP_DOWNLOADING.match(line):
            self.downloaded += 1
            self.downloading = f"{m.group(1)}, {m.group(2)}"
        elif m := _PIP_INSTALLING.match(line):
            self.total = len([p for p in m.group(1).split(",") if p.strip()])
            self.phase, self.downloading = "installing packages", ""
        elif m := _PIP_DONE.match(line):
            self.installed = len(m.group(1).split())
            self.total = self.total or self.installed
            self.phase = "installed packages"
        after = (self.phase, self.total, self.collected, self.downloaded, self.installed, self.downloading)
        return after != before

    def preparation(self) -> Preparation:
        """Where the installer is, with package counts once it knows them."""
        from kubeflow_trainer.types import Preparation

        if self.phase == "resolving packages":
            found = self.collected or None
            return Preparation(phase=self.phase, done=found, total=found, unit="packages found" if found else "")
        if self.phase == "downloading packages":
            return Preparation(
                phase=self.phase, done=self.downloaded, total=self.total, unit="packages", detail=self.downloading
            )
        if self.phase == "installing packages":
            return Preparation(phase=self.phase, done=0, total=self.total, unit="packages", detail=self.downloading)
        total = self.total or self.installed  # uv installs fewer when some were there already: all are in place
        if self.phase == "compiling bytecode":
            return Preparation(phase=self.phase, done=total, total=total, unit="packages installed")
        return Preparation(phase=self.phase, done=total, total=total, unit="packages")
