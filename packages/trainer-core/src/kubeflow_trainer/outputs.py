"""Job outputs and data directories: the names every backend uses, and the one download routine.

Every job gets an output directory, named on every node by :data:`OUTPUT_DIR_ENV`. A backend with the
``outputs`` capability keeps its files after the job ended (completed or failed) until ``delete_job``, and
yields them through :meth:`~kubeflow_trainer.backend.Backend.open_outputs` as :class:`OutputFile` streams;
:func:`download` writes them under the caller's destination, streaming (a file is never held in memory),
through a staging directory so that a refused or failed download leaves the destination as it was.

Data directories (the ``DataDirs`` option) are named in the job by ``KUBEFLOW_TRAINER_DATA_DIR_<NAME>``
(:func:`data_dir_env`).
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kubeflow_trainer.errors import BackendError, InvalidRequestError

OUTPUT_DIR_ENV = "KUBEFLOW_TRAINER_OUTPUT_DIR"
"""The environment variable naming the job's output directory, on every node of every backend."""
DATA_DIR_ENV_PREFIX = "KUBEFLOW_TRAINER_DATA_DIR_"
"""``DataDirs({"imagenet": ...})`` is ``$KUBEFLOW_TRAINER_DATA_DIR_IMAGENET`` in the job."""
CONTAINER_OUTPUT_DIR = "/kft-outputs"
"""Where container backends mount the job's output volume."""
CONTAINER_DATA_ROOT = "/kft-data"
"""Where container backends mount data directories: ``/kft-data/<name>``."""
STAGING_PREFIX = ".kft-outputs-"
"""Name prefix of the staging directory a download writes into, inside the destination."""
CHUNK = 1 << 20

_DATA_DIR_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def data_dir_env(name: str) -> str:
    """The environment variable naming data directory ``name`` in the job."""
    return DATA_DIR_ENV_PREFIX + name.upper()


def validate_data_dir_name(name: str) -> str:
    """A data directory name: lower-case letters, digits and ``_``, starting with a letter (it becomes part of
    an environment variable and of a mount path)."""
    if not isinstance(name, str) or not _DATA_DIR_NAME.match(name):
        raise ValueError(
            f"data directory name {name!r} must be 1-63 lower-case letters, digits or '_' starting with a letter "
            f"(it names ${DATA_DIR_ENV_PREFIX}<NAME> in the job), e.g. 'imagenet'"
        )
    return name


@dataclass
class OutputFile:
    """One regular file of a job's outputs, as a backend yields it: its path relative to the output directory
    (``/``-separated) and a readable binary stream, valid until the backend yields the next file."""

    path: str
    reader: IO[bytes]
    size: int | None = None


def normalize_sub_path(path: str | os.PathLike[str] | None) -> str:
    """``path`` (relative to the output directory) as a clean ``/``-separated relative path; ``""`` for all.

    Raises InvalidRequestError for absolute paths and paths that leave the output directory.
    """
    if path is None:
        return ""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidRequestError(f"path must be a relative path inside the job's outputs; got {type(path).__name__}")
    text = os.fspath(path).replace(os.sep, "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise InvalidRequestError(
            f"path={text!r} is absolute; give a path relative to the job's output directory (e.g. 'checkpoints')"
        )
    clean = posixpath.normpath(text) if text else "."
    if clean == ".":
        return ""
    if clean == ".." or clean.startswith("../"):
        raise InvalidRequestError(f"path={text!r} leaves the job's output directory; give a path inside it")
    return clean


def check_destination(dest: str | os.PathLike[str]) -> Path:
    """The destination directory, checked before anything is fetched: a path that is not an existing file."""
    if not isinstance(dest, (str, os.PathLike)) or not os.fspath(dest):
        raise InvalidRequestError(f"dest must be a directory path (str or os.PathLike); got {dest!r}")
    target = Path(os.fspath(dest)).expanduser()
    if target.exists() and not target.is_dir():
        raise InvalidRequestError(f"dest {str(target)!r} exists and is not a directory; name a directory")
    parent = target.resolve().parent
    if not target.exists() and not parent.is_dir():
        raise InvalidRequestError(
            f"the parent of dest {str(target)!r} ({parent}) does not exist; create it or choose another directory"
        )
    return target


def _safe_relative(path: str) -> str:
    """A file path a backend yielded, refused when it could escape the destination."""
    clean = posixpath.normpath(path.replace("\\", "/"))
    if not path or clean.startswith("/") or clean == ".." or clean.startswith("../") or clean == ".":
        raise BackendError(f"the backend yielded an output file with an unsafe path {path!r}; nothing was written")
    return clean


def download(files: Iterable[OutputFile], dest: Path, *, sub_path: str, overwrite: bool) -> list[Path]:
    """Write ``files`` under ``dest`` (each at its path relative to the output directory); return the written
    paths, sorted.

    Files are streamed into a staging directory inside ``dest`` and moved into place only when all arrived:
    a file that exists already (unless ``overwrite``), a path that is a directory there, or a failure halfway
    leaves ``dest`` as it was (a ``dest`` this call created is removed again). ``sub_path`` (normalised) only
    shapes the message when nothing matched.
    """
    import uuid

    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    written: list[str] = []
    try:
        for item in files:
            rel = _safe_relative(item.path)
            target = dest / rel
            if target.is_dir() and not target.is_symlink():
                raise InvalidRequestError(
                    f"{target} is a directory in dest; the job's output {rel!r} cannot replace it"
                )
            if target.exists() and not overwrite:
                raise InvalidRequestError(
                    f"{target} exists already; pass overwrite=True to replace files, or choose an empty dest"
                )
            staged = staging / rel
            staged.parent.mkdir(parents=True, exist_ok=True)
            with open(staged, "wb") as out:
                shutil.copyfileobj(item.reader, out, CHUNK)
            written.append(rel)
        if sub_path and not written:
            raise InvalidRequestError(
                f"the job's outputs have no file under {sub_path!r}; call get_job_outputs without path= to fetch all"
            )
        paths = []
        for rel in sorted(written):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
            paths.append(target)
        return paths
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def iter_directory(root: str, sub_path: str) -> Iterator[OutputFile]:
    """The regular files under ``root/sub_path`` (a file or a directory), as :class:`OutputFile`; symbolic links
    and special files are skipped (never followed out of the output directory)."""
    start = os.path.join(root, sub_path) if sub_path else root
    if os.path.islink(start) or not os.path.exists(start):
        return
    if os.path.isfile(start):
        with open(start, "rb") as fh:
            yield OutputFile(sub_path, fh, os.path.getsize(start))
        return
    for directory, dirs, names in os.walk(start):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(directory, d)))
        for name in sorted(names):
            full = os.path.join(directory, name)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            with open(full, "rb") as fh:
                yield OutputFile(rel, fh, os.path.getsize(full))


class _ChunkReader:
    """A read-only file object over an iterator of byte chunks (an engine's streamed archive); each read
    copies only what it returns (an offset into the current chunk, never a re-sliced buffer)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = b""
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        wanted = size
        while size < 0 or wanted > 0:
            if self._offset >= len(self._chunk):
                try:
                    self._chunk, self._offset = next(self._chunks), 0
                except StopIteration:
                    break
                continue
            end = len(self._chunk) if size < 0 else min(len(self._chunk), self._offset + wanted)
            parts.append(self._chunk[self._offset : end])
            wanted -= end - self._offset
            self._offset = end
        return b"".join(parts)


def iter_tar_stream(chunks: Iterator[bytes], sub_path: str) -> Iterator[OutputFile]:
    """The regular files of a streamed tar archive of ``<output dir>/<sub_path>`` in the shape the engines'
    archive API gives (its one top entry named like the last component of what was asked), renamed to paths
    relative to the output directory. Read as a stream (``r|``): one member at a time, never the whole."""
    import tarfile

    with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|", bufsize=CHUNK) as archive:  # type: ignore[call-overload]
        for member in archive:
            if not member.isfile():
                continue
            name = member.name
            while name.startswith("./"):
                name = name[2:]
            # The top entry stands for what was asked: Docker names it like the directory, Podman leaves a
            # volume's root unnamed ("/x"); below a sub-path both name it like its last component.
            rel = posixpath.join(posixpath.dirname(sub_path), name.lstrip("/")) if sub_path else name.partition("/")[2]
            if not rel:
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            yield OutputFile(rel, handle, member.size)
