"""Workspaces: the user's project directory, shipped into the job.

:class:`Workspace` names the directory (``CustomTrainer(workspace=...)``); :func:`take_snapshot` walks it once
at submit time and returns a :class:`WorkspaceSnapshot`: the files that ship (relative path, size, mode,
SHA-256), what was skipped and why, and a content digest that backends use as a cache key (an unchanged
workspace is not copied or uploaded again where the backend can keep it).

What ships:

- every regular file under the directory, except
- what the directory's ``.gitignore`` files exclude (nested ones too; matched by :mod:`pathspec`'s
  ``GitIgnoreSpec``, the same rules git applies),
- the default excludes (:data:`DEFAULT_EXCLUDES`: VCS folders, virtualenvs, caches; any directory holding
  a ``pyvenv.cfg`` is a virtualenv),
- and the user's ``exclude`` patterns (gitignore syntax); ``include`` patterns bring back files the rules
  above dropped.

Safety: the walk never follows a symlink out of the directory and never opens anything but a regular file
(no FIFO, socket or device is read, so nothing hangs). A symlink to a file inside the directory ships as
that file's content; symlinks to directories or out of the directory, and special files, are skipped and
listed in :attr:`WorkspaceSnapshot.skipped` (a dry run shows them). Patterns may not be absolute or
contain ``..``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubeflow_trainer.dataclass_compat import DataclassCompat
from kubeflow_trainer.errors import WorkspaceError, WorkspaceTooLargeError

DEFAULT_EXCLUDES = (
    ".git/",
    ".hg/",
    ".svn/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "*.py[cod]",
    ".tox/",
    ".nox/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".ipynb_checkpoints/",
    "*.egg-info/",
    ".DS_Store",
    ".kft/",
)
"""Never shipped unless an ``include`` pattern names them (gitignore syntax). ``.kft/`` is where the SDK
puts its own files in the job."""

__all__ = [
    "DEFAULT_EXCLUDES",
    "Workspace",
    "WorkspaceError",
    "WorkspaceSnapshot",
    "WorkspaceTooLargeError",
    "take_snapshot",
]

SDK_DIR = ".kft"
"""The SDK's folder inside the job's workspace (the generated ``train.py``, the in-job stand-ins)."""

ARCHIVE_MTIME = 1_600_000_000
"""Fixed modification time of archive members, so that equal workspaces give equal archives."""


def _check_pattern(pattern: str) -> str:
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("workspace patterns must be non-empty strings (gitignore syntax, e.g. 'data/' or '*.ckpt')")
    bare = pattern.lstrip("!")
    if bare.startswith("/") and bare.strip("/").count("/") and os.path.exists(bare):
        # '/build' is gitignore's "anchored at the workspace root"; '/etc/passwd' is a path of this machine.
        raise ValueError(
            f"workspace pattern {pattern!r} looks like an absolute path of this machine; patterns are relative "
            "to the workspace (a leading '/' anchors them at its root)"
        )
    if ".." in bare.replace("\\", "/").split("/"):
        raise ValueError(f"workspace pattern {pattern!r} contains '..'; patterns name paths inside the workspace only")
    return pattern


class Workspace(DataclassCompat):
    """The project directory shipped into the job: the job's working directory on every node, and importable.

    Args:
        path: The directory (absolute or relative to the current directory).
        include: gitignore-style patterns of files to ship even though ``.gitignore`` or the default excludes
            drop them (e.g. ``["data/small.csv"]``).
        exclude: gitignore-style patterns of more files not to ship (e.g. ``["*.ckpt", "data/"]``).
        gitignore: Respect the directory's ``.gitignore`` files (default True).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    path: str
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    gitignore: bool = True

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, value: Any) -> str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value.strip():
            raise ValueError("workspace path must be a directory path")
        path = os.path.abspath(os.path.expanduser(value))
        if not os.path.isdir(path):
            raise ValueError(f"workspace {value!r} is not a directory; name your project's folder (e.g. '.')")
        return path

    @field_validator("include", "exclude")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return [_check_pattern(p) for p in value]


class WorkspaceFile(BaseModel):
    """One file that ships: path relative to the workspace root (``/``-separated), size, mode, SHA-256."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    path: str
    size: int
    executable: bool = False
    sha256: str


class SkippedPath(BaseModel):
    """A path the walk did not ship, and why (a symlink out of the workspace, a FIFO...)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    path: str
    reason: str


class WorkspaceSnapshot(BaseModel):
    """What ships: the files (sorted by path), their total size, what was skipped, and the content digest."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    root: str
    """The directory on the submitting machine."""
    files: tuple[WorkspaceFile, ...]
    skipped: tuple[SkippedPath, ...] = ()
    digest: str
    """SHA-256 over the paths, modes and contents: equal workspaces have equal digests."""

    @property
    def total_size(self) -> int:
        """Sum of the file sizes in bytes."""
        return sum(f.size for f in self.files)

    @property
    def short_digest(self) -> str:
        """The first 16 hex digits of :attr:`digest` (cache keys, object names)."""
        return self.digest[:16]

    def largest(self, count: int = 5) -> list[WorkspaceFile]:
        """The ``count`` largest files, largest first."""
        return sorted(self.files, key=lambda f: (-f.size, f.path))[:count]

    def source_path(self, file: WorkspaceFile) -> str:
        """Where ``file`` is on the submitting machine (a symlink inside the workspace resolves to its target)."""
        return os.path.realpath(os.path.join(self.root, *file.path.split("/")))

    def read(self, file: WorkspaceFile) -> bytes:
        """The content of ``file``, checked against its digest (the workspace changed if it differs)."""
        import hashlib

        data = _read_regular(self.source_path(file))
        if hashlib.sha256(data).hexdigest() != file.sha256:
            raise WorkspaceError(f"workspace file {file.path!r} changed after the job was rendered; submit again")
        return data

    def archive(self, *, compress: bool = False, prefix: str = "", trailer: tuple[str, bytes] | None = None) -> bytes:
        """The files as one tar archive (gzip-compressed when ``compress``), members sorted, owner root,
        fixed modification times: equal workspaces give byte-identical archives. ``trailer`` (name, content)
        is added as the last member (a marker that the whole archive arrived)."""
        import gzip
        import io
        import tarfile

        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            made: set[str] = set()
            for file in self.files:
                parts = file.path.split("/")
                for i in range(1, len(parts)):
                    directory = prefix + "/".join(parts[:i])
                    if directory not in made:
                        made.add(directory)
                        info = tarfile.TarInfo(directory)
                        info.type = tarfile.DIRTYPE
                        info.mode = 0o755
                        info.mtime = ARCHIVE_MTIME
                        tar.addfile(info)
                data = self.read(file)
                info = tarfile.TarInfo(prefix + file.path)
                info.size = len(data)
                info.mode = 0o755 if file.executable else 0o644
                info.mtime = ARCHIVE_MTIME
                tar.addfile(info, io.BytesIO(data))
            if trailer is not None:
                info = tarfile.TarInfo(prefix + trailer[0])
                info.size = len(trailer[1])
                info.mode = 0o644
                info.mtime = ARCHIVE_MTIME
                tar.addfile(info, io.BytesIO(trailer[1]))
        if not compress:
            return raw.getvalue()
        return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)

    def summary(self) -> str:
        """One line: file count, total size, digest."""
        return f"{len(self.files)} files, {human_size(self.total_size)}, digest {self.short_digest}"

    def check_limit(
        self, limit: int, *, backend: str, why: str, alternative: str, size: int | None = None, measured: str = ""
    ) -> None:
        """Raise :class:`WorkspaceTooLargeError` when the workspace is over ``limit`` bytes on ``backend``,
        naming the largest files and how to exclude them. ``size`` (described by ``measured``, e.g.
        ``compressed``) is what is compared; by default the total of the file sizes."""
        size = self.total_size if size is None else size
        if size <= limit:
            return
        largest = ", ".join(f"{f.path} ({human_size(f.size)})" for f in self.largest())
        first = self.largest(1)[0].path if self.files else "big-file"
        raise WorkspaceTooLargeError(
            f"the workspace {self.root} is {human_size(size)}{f' {measured}' if measured else ''}; the {backend} "
            f"backend takes at most {human_size(limit)} ({why}). Largest files: {largest}. Exclude what the job "
            f"does not need with Workspace(path, exclude=[{first!r}, ...]) or a .gitignore rule; {alternative}",
            size=size,
            limit=limit,
        )


def human_size(size: int) -> str:
    """``1.5 MiB``-style size."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


# Walking -----------------------------------------------------------------------------------------------
_HASHES: dict[tuple[str, int, int, int, int], str] = {}
"""SHA-256 of files already read in this process, keyed by path and stat identity (size, mtime, inode,
device): an unchanged resubmit does not read the files again."""


def _read_regular(path: str) -> bytes:
    """Read a regular file without following a final symlink and without blocking on a FIFO."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise WorkspaceError(f"cannot read workspace file {path} ({exc}); exclude it or fix its permissions") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise WorkspaceError(f"workspace path {path} is not a regular file; exclude it")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


def _file_hash(path: str, st: os.stat_result) -> str:
    import hashlib

    key = (path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    digest = _HASHES.get(key)
    if digest is None:
        digest = hashlib.sha256(_read_regular(path)).hexdigest()
        _HASHES[key] = digest
    return digest


class _Rules:
    """Which relative paths are excluded: default excludes, .gitignore files (per directory), user patterns."""

    def __init__(self, workspace: Workspace) -> None:
        from pathspec import GitIgnoreSpec

        self._spec = GitIgnoreSpec
        self.defaults = GitIgnoreSpec.from_lines(DEFAULT_EXCLUDES)
        self.exclude = GitIgnoreSpec.from_lines(workspace.exclude)
        self.include = GitIgnoreSpec.from_lines(workspace.include)
        self.gitignore = workspace.gitignore
        self.nested: list[tuple[str, Any]] = []  # (directory prefix 'a/b/', spec)

    def add_gitignore(self, directory: str, path: str) -> None:
        if not self.gitignore:
            return
        try:
            text = _read_regular(path).decode("utf-8", "replace")
        except WorkspaceError:
            return
        self.nested.append((directory, self._spec.from_lines(text.splitlines())))

    def excluded(self, rel: str, is_dir: bool) -> bool:
        probe = rel + "/" if is_dir else rel
        if self.include.match_file(probe):
            return False
        if self.defaults.match_file(probe) or self.exclude.match_file(probe):
            return True
        ignored = False
        for directory, spec in self.nested:
            if not probe.startswith(directory):
                continue
            result = spec.check_file(probe[len(directory) :])
            if result.include is not None:
                ignored = bool(result.include)
        return ignored


def take_snapshot(workspace: Workspace) -> WorkspaceSnapshot:
    """Walk ``workspace`` and return what ships. Raises :class:`WorkspaceError` for an unreadable file."""
    root = os.path.realpath(workspace.path)
    rules = _Rules(workspace)
    files: list[WorkspaceFile] = []
    skipped: list[SkippedPath] = []
    for rel, kind, detail in _walk(root, rules):
        if kind == "skip":
            skipped.append(SkippedPath(path=rel, reason=detail))
            continue
        source = os.path.join(root, *rel.split("/"))
        target = os.path.realpath(source) if kind == "link" else source
        st = os.stat(target, follow_symlinks=False)
        files.append(
            WorkspaceFile(
                path=rel,
                size=st.st_size,
                executable=bool(st.st_mode & stat.S_IXUSR),
                sha256=_file_hash(target, st),
            )
        )
    import hashlib

    files.sort(key=lambda f: f.path)
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.path}\0{int(f.executable)}\0{f.sha256}\n".encode())
    return WorkspaceSnapshot(root=root, files=tuple(files), skipped=tuple(skipped), digest=digest.hexdigest())


def _walk(root: str, rules: _Rules) -> Iterator[tuple[str, str, str]]:
    """Yield ``(relative path, kind, detail)``: kind ``file``, ``link`` (a symlink to a file inside the
    workspace) or ``skip`` (detail: why). Never follows a directory symlink."""
    pending = [""]
    while pending:
        prefix = pending.pop()
        directory = os.path.join(root, *prefix.split("/")) if prefix else root
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            yield prefix.rstrip("/") or ".", "skip", f"unreadable directory ({exc.strerror})"
            continue
        if any(e.name == ".gitignore" and e.is_file(follow_symlinks=False) for e in entries):
            rules.add_gitignore(prefix, os.path.join(directory, ".gitignore"))
        for entry in entries:
            rel = prefix + entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if rules.excluded(rel, True):
                    continue
                if os.path.exists(os.path.join(entry.path, "pyvenv.cfg")) and not rules.include.match_file(rel + "/"):
                    continue  # a virtualenv, whatever its name
                pending.append(rel + "/")
                continue
            if rules.excluded(rel, False):
                continue
            if stat.S_ISREG(st.st_mode):
                yield rel, "file", ""
            elif stat.S_ISLNK(st.st_mode):
                target = os.path.realpath(entry.path)
                if target != root and not target.startswith(root + os.sep):
                    yield rel, "skip", "symlink pointing outside the workspace"
                elif os.path.isdir(target):
                    yield rel, "skip", "symlink to a directory"
                elif os.path.isfile(target):
                    yield rel, "link", ""
                else:
                    yield rel, "skip", "symlink to a missing or special file"
            else:
                yield rel, "skip", "special file (FIFO, socket or device)"
