"""The small engine interface the shared container backend is written against.

Docker and Podman differ only in their client and a few policies (how node 0 is addressed, how a GPU is
requested, where the socket is); each distribution implements :class:`ContainerEngine` with its SDK.
Every method raises :class:`~kubeflow_trainer.errors.BackendUnavailableError` when the engine cannot be
reached and :class:`~kubeflow_trainer.errors.BackendError` for other engine failures.
"""

from __future__ import annotations

import abc
import io
import re
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from kubeflow_trainer_containers.request import ContainerSpec

_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def parse_time(value: str | None) -> datetime | None:
    """An engine's RFC 3339 timestamp (nanoseconds, ``Z``) as an aware datetime; None for the zero time."""
    if not value or value.startswith("0001-01-01"):
        return None
    match = _TIME.match(value)
    if not match:
        return None
    frac = (match.group(2) or ".0")[:7]
    tz = match.group(3) or "Z"
    return datetime.fromisoformat(match.group(1) + frac + ("+00:00" if tz == "Z" else tz))


def engine_time(value: Any) -> datetime | None:
    """A timestamp as engines report it: RFC 3339 text (Docker) or epoch seconds (Podman's libpod)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc) if value > 0 else None
    return parse_time(value) if isinstance(value, str) else None


def info_from_inspect(container_id: str, name: str, labels: dict[str, str], attrs: dict[str, Any]) -> ContainerInfo:
    """A :class:`ContainerInfo` from an inspect result (Docker and Podman share its ``State`` shape)."""
    state = attrs.get("State") or {}
    return ContainerInfo(
        id=container_id,
        name=name,
        labels=labels or {},
        state=str(state.get("Status", "created")),
        exit_code=state.get("ExitCode"),
        created=engine_time(attrs.get("Created")) or datetime.now(timezone.utc),
        started_at=engine_time(state.get("StartedAt")),
        finished_at=engine_time(state.get("FinishedAt")),
        error=state.get("Error") or None,
        oom_killed=bool(state.get("OOMKilled")),
    )


_EXITED = re.compile(r"^Exited \((-?\d+)\)")
_ENDED = ("exited", "stopped", "dead")


def info_from_summary(entry: dict[str, Any]) -> ContainerInfo:
    """A :class:`ContainerInfo` from one entry of an engine's container list (see
    :meth:`ContainerEngine.list_container_summaries`): Docker's ``/containers/json`` (``Created`` in epoch
    seconds, the exit code only in the ``Status`` text, no start or finish times) and Podman's libpod list
    (``ExitCode``, ``StartedAt`` and ``ExitedAt`` in epoch seconds, ``Created`` as RFC 3339 text)."""
    state = str(entry.get("State") or "created")
    names = entry.get("Names") or [entry.get("Id", "")]
    exit_code: int | None = None
    if state in _ENDED:
        if isinstance(entry.get("ExitCode"), int) and "Exited" in entry:  # libpod
            exit_code = int(entry["ExitCode"])
        else:  # Docker: "Exited (3) 2 seconds ago"
            match = _EXITED.match(str(entry.get("Status") or ""))
            exit_code = int(match.group(1)) if match else None
    return ContainerInfo(
        id=str(entry.get("Id", "")),
        name=str(names[0]).lstrip("/"),
        labels=dict(entry.get("Labels") or {}),
        state=state,
        exit_code=exit_code,
        created=engine_time(entry.get("Created")) or datetime.now(timezone.utc),
        started_at=engine_time(entry.get("StartedAt")) if state != "created" else None,
        finished_at=engine_time(entry.get("ExitedAt")) if state in _ENDED else None,
    )


def demux_frames(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The payloads of an engine's multiplexed log stream (Docker's and Podman's ``/logs`` of a container
    without a TTY: frames of an 8-byte header, whose last 4 bytes are the payload's size, big-endian, then the
    payload), from the response's chunks as they arrive: one ``bytes`` per chunk that completes frames, so a
    followed line comes as soon as its chunk does, and no read waits for more than the engine sent (the
    SDKs' own readers make two socket reads per frame, that is per log line)."""
    buf = b""
    for chunk in chunks:
        buf = buf + chunk if buf else chunk
        out = []
        pos, end = 0, len(buf)
        while end - pos >= 8:
            size = int.from_bytes(buf[pos + 4 : pos + 8], "big")
            if end - pos - 8 < size:
                break
            out.append(buf[pos + 8 : pos + 8 + size])
            pos += 8 + size
        buf = buf[pos:]
        if out:
            yield b"".join(out)


def tar_files(files: dict[str, str]) -> bytes:
    """A tar archive of text files (relative path -> content), with their parent directories."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for directory in sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for path, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def untar_file(data: bytes) -> bytes | None:
    """The content of the single regular file in a tar archive (what the engines' archive API returns)."""
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            if member.isfile():
                handle = archive.extractfile(member)
                return handle.read() if handle is not None else None
    return None


def label_filters(labels: dict[str, str]) -> dict[str, list[str]]:
    """The ``label`` filter both engines' list APIs take."""
    return {"label": [f"{k}={v}" for k, v in labels.items()]}


@dataclass
class ContainerInfo:
    """One container as the engine reports it."""

    id: str
    name: str
    labels: dict[str, str]
    state: str
    """``created``, ``running``, ``exited``, ``paused``, ``restarting``, ``removing``, ``dead``."""
    exit_code: int | None
    created: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    oom_killed: bool = False
    """The kernel's OOM killer ended the container (its memory limit was reached)."""


@dataclass
class EngineEvent:
    """A container lifecycle event reported by the engine."""

    time: datetime
    container: str
    action: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class LayerProgress:
    """One report of an image pull about one of the image's layers (engine-neutral).

    ``state``: ``present`` (already in local storage), ``waiting``, ``downloading`` (``current`` of ``total``
    bytes where the engine says), ``extracting``, ``done``. Docker reports every state with byte counts; Podman's
    API reports a layer when it starts copying it (``downloading``, no bytes) and all of them ``done`` together.
    """

    layer: str
    state: Literal["present", "waiting", "downloading", "extracting", "done"]
    current: int | None = None
    total: int | None = None


PullListener = Callable[[LayerProgress], None]
"""Called by :meth:`ContainerEngine.pull_image` for each layer report, in the engine's order."""


def split_image(image: str) -> tuple[str, str]:
    """``repository`` and ``tag`` (or ``@digest``'s digest) of an image reference; tag ``latest`` when none:
    ``127.0.0.1:5000/a/b:v1`` -> ``("127.0.0.1:5000/a/b", "v1")``."""
    if "@" in image:
        repo, digest = image.split("@", 1)
        return repo, digest
    name, _, tag = image.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return image, "latest"


class ContainerEngine(abc.ABC):
    """A container engine (Docker, Podman) as the shared backend needs it."""

    name: str = ""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise BackendUnavailableError when the engine does not answer."""

    @abc.abstractmethod
    def image_exists(self, image: str) -> bool:
        """True when the image is in local storage."""

    @abc.abstractmethod
    def pull_image(self, image: str, progress: PullListener | None = None) -> None:
        """Pull the image, reporting each layer's progress to ``progress``; raise BackendError saying why it
        could not be pulled."""

    @abc.abstractmethod
    def create_network(self, name: str, labels: dict[str, str]) -> None:
        """A user-defined network whose containers resolve each other by name."""

    @abc.abstractmethod
    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        """A named volume."""

    @abc.abstractmethod
    def create_container(self, spec: ContainerSpec) -> str:
        """Create (not start) a container; return its id. Raise BackendError when the name is taken."""

    @abc.abstractmethod
    def put_files(self, container: str, directory: str, files: dict[str, str]) -> None:
        """Write text files (relative path -> content) under ``directory`` of a created container."""

    def put_archive(self, container: str, directory: str, data: bytes) -> None:
        """Extract the tar archive ``data`` under ``directory`` of a created container (workspaces).

        Optional: the default refuses, and a backend on such an engine does not declare workspaces."""
        from kubeflow_trainer.errors import BackendError

        raise BackendError(f"the {self.name} engine cannot copy archives into containers")

    def get_file(self, container: str, path: str) -> bytes | None:
        """The content of the file ``path`` in a container (running or exited), ``None`` when it does not exist.

        Optional: the default (for engines that cannot) reports no file, so features that read files from a
        job (``update_trainjob_status``) show nothing rather than fail."""
        return None

    def get_archive(self, container: str, path: str) -> Iterator[bytes] | None:
        """A tar archive of ``path`` (a file or a directory) in a container, running or exited, as streamed
        byte chunks in the engines' archive API shape (one top entry named like the last component of
        ``path``); ``None`` when ``path`` does not exist.

        Optional: the default refuses, so ``get_job_outputs`` says the engine cannot read outputs."""
        from kubeflow_trainer.errors import BackendError

        raise BackendError(f"the {self.name or 'container'} engine cannot read files from containers (get_archive)")

    @abc.abstractmethod
    def start_container(self, container: str) -> None:
        """Start a created container."""

    @abc.abstractmethod
    def list_containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """Containers (running or not) carrying all ``labels``."""

    def list_container_summaries(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """Containers carrying all ``labels`` as the engine's list call reports them: one API call whatever
        their number (``list_jobs`` of many jobs), where :meth:`list_containers` may inspect each one.

        ``id``, ``name``, ``labels``, ``state`` and, for a container that exited, ``exit_code`` are exact
        (``exit_code`` is None where the list does not say it: read the container with :meth:`list_containers`
        before reporting it failed); ``created`` may be whole seconds; ``started_at`` and ``finished_at`` may
        be None or whole seconds, ``oom_killed`` and ``error`` are not known. Default: :meth:`list_containers`."""
        return self.list_containers(labels)

    @abc.abstractmethod
    def stop_container(self, container: str, timeout: float) -> None:
        """Stop a container (SIGTERM, SIGKILL after ``timeout``); no error if it is not running."""

    @abc.abstractmethod
    def remove_container(self, container: str) -> None:
        """Remove a container, killing it if needed; no error if it does not exist."""

    @abc.abstractmethod
    def remove_network(self, name: str) -> None:
        """Remove a network; no error if it does not exist."""

    def release_network(self, name: str, containers: list[str]) -> bool:
        """Remove the network of a job whose ``containers`` have all exited, keeping the containers (their logs,
        files and exit codes): disconnect each, then remove the network. False when the engine cannot (this
        default): the network then stays until the job is deleted."""
        return False

    @abc.abstractmethod
    def remove_volume(self, name: str) -> None:
        """Remove a volume; no error if it does not exist."""

    @abc.abstractmethod
    def list_networks(self, labels: dict[str, str]) -> list[str]:
        """Names of networks carrying all ``labels``."""

    @abc.abstractmethod
    def list_volumes(self, labels: dict[str, str]) -> list[str]:
        """Names of volumes carrying all ``labels``."""

    @abc.abstractmethod
    def logs(self, container: str, follow: bool) -> Iterator[bytes]:
        """The container's stdout and stderr as byte chunks; with ``follow`` until it stops."""

    def timed_logs(self, container: str) -> Iterator[bytes] | None:
        """The container's output so far with each line prefixed by the RFC 3339 time it was written and a
        space (the engines' ``timestamps`` log option), or None when the engine cannot (lines then merge
        without times). Optional."""
        return None

    @abc.abstractmethod
    def events(self, labels: dict[str, str], since: datetime, until: datetime) -> list[EngineEvent]:
        """Container events between ``since`` and ``until`` of containers carrying ``labels``."""

    def native_request(self, spec: ContainerSpec, *, reveal_secrets: bool = False) -> dict[str, Any]:
        """The engine's own create request for ``spec``: what dry runs show (credentials as placeholders) and,
        with ``reveal_secrets``, what :meth:`create_container` sends. Default: the spec itself."""
        return {**spec.model_dump(exclude={"secret_env"}), "env": spec.environment(reveal_secrets=reveal_secrets)}

    def master_address(self, container_name: str) -> str:
        """How other nodes address node 0: its container name (user-defined networks resolve it)."""
        return container_name

    def close(self) -> None:  # noqa: B027 - optional
        """Release the client."""
