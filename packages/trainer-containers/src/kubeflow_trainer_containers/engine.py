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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

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
    )


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


@dataclass
class EngineEvent:
    """A container lifecycle event reported by the engine."""

    time: datetime
    container: str
    action: str
    attributes: dict[str, str]


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
    def pull_image(self, image: str) -> None:
        """Pull the image; raise BackendError saying why it could not be pulled."""

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

    def get_file(self, container: str, path: str) -> bytes | None:
        """The content of the file ``path`` in a container (running or exited), ``None`` when it does not exist.

        Optional: the default (for engines that cannot) reports no file, so features that read files from a
        job (``update_trainjob_status``) show nothing rather than fail."""
        return None

    @abc.abstractmethod
    def start_container(self, container: str) -> None:
        """Start a created container."""

    @abc.abstractmethod
    def list_containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """Containers (running or not) carrying all ``labels``."""

    @abc.abstractmethod
    def stop_container(self, container: str, timeout: float) -> None:
        """Stop a container (SIGTERM, SIGKILL after ``timeout``); no error if it is not running."""

    @abc.abstractmethod
    def remove_container(self, container: str) -> None:
        """Remove a container, killing it if needed; no error if it does not exist."""

    @abc.abstractmethod
    def remove_network(self, name: str) -> None:
        """Remove a network; no error if it does not exist."""

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
