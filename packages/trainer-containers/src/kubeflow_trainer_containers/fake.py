"""An in-memory :class:`~kubeflow_trainer_containers.engine.ContainerEngine` for tests (like httpx's
MockTransport): containers with states, exit codes, logs, files and labels; networks; volumes; images.

Nothing runs: a test plays the containers' part (:meth:`FakeEngine.finish`, :meth:`FakeEngine.kill`) or
passes ``on_start``, called with each container as it starts. Faults are injected by name:
``engine.fail("create_container", BackendError("disk full"), after=1)`` makes the second create fail.

For the backend's logic only: the real engines are tested by the same kit
(:mod:`kubeflow_trainer_containers.testing`) in the Docker and Podman distributions.
"""

from __future__ import annotations

import io
import itertools
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from kubeflow_trainer.errors import BackendError, BackendUnavailableError
from kubeflow_trainer_containers.engine import (
    ContainerEngine,
    ContainerInfo,
    EngineEvent,
    LayerProgress,
    PullListener,
)
from kubeflow_trainer_containers.request import ContainerSpec

KILLED = 137
"""Exit code of a container killed with SIGKILL (as the engines report it)."""


@dataclass
class FakeContainer:
    """One container of a :class:`FakeEngine`."""

    id: str
    spec: ContainerSpec
    env: dict[str, str]
    """The environment the engine received, credentials' values included."""
    created: datetime
    state: str = "created"
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    logs: bytes = b""
    files: dict[str, bytes] = field(default_factory=dict)
    """Absolute path -> content."""
    oom_killed: bool = False

    @property
    def name(self) -> str:
        """The container's name."""
        return self.spec.name

    def info(self) -> ContainerInfo:
        """What ``list_containers`` reports for it."""
        return ContainerInfo(
            id=self.id,
            name=self.name,
            labels=dict(self.spec.labels),
            state=self.state,
            exit_code=self.exit_code,
            created=self.created,
            started_at=self.started_at,
            finished_at=self.finished_at,
            oom_killed=self.oom_killed,
        )


@dataclass
class _Fault:
    error: BaseException
    after: int
    times: int


def _matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


class FakeEngine(ContainerEngine):
    """An engine that keeps everything in memory; see the module's docstring."""

    def __init__(
        self,
        name: str = "fake",
        *,
        images: set[str] | None = None,
        pullable: set[str] | None = None,
        on_start: Callable[[FakeContainer], None] | None = None,
    ) -> None:
        self.name = name
        self.images: set[str] = set(images or ())
        """Images in local storage."""
        self.pullable: set[str] = set(pullable or ())
        """Images ``pull_image`` can fetch."""
        self.pull_reports: dict[str, list[LayerProgress]] = {}
        """The layer reports ``pull_image`` gives for an image, in order (none: a silent pull)."""
        self.on_start = on_start
        self.containers: dict[str, FakeContainer] = {}
        self.networks: dict[str, dict[str, str]] = {}
        self.volumes: dict[str, dict[str, str]] = {}
        self.event_log: list[EngineEvent] = []
        self.calls: list[str] = []
        """Every method called, in order."""
        self.reachable = True
        self._faults: dict[str, list[_Fault]] = {}
        self._ids = itertools.count(1)
        self._clock = datetime(2025, 1, 1, tzinfo=timezone.utc)

    # Test controls -------------------------------------------------------------------------------------
    def fail(self, method: str, error: BaseException, *, after: int = 0, times: int = 1) -> None:
        """Make ``method`` raise ``error`` on its call number ``after`` + 1 (and the ``times`` - 1 next ones)."""
        if not callable(getattr(ContainerEngine, method, None)):
            raise ValueError(f"{method!r} is not a ContainerEngine method")
        self._faults.setdefault(method, []).append(_Fault(error, after, times))

    def now(self) -> datetime:
        """The fake clock, a millisecond later at each call (so events and finish times are ordered)."""
        self._clock += timedelta(milliseconds=1)
        return self._clock

    def container(self, name_or_id: str) -> FakeContainer:
        """A container by name or id; KeyError naming the ones there are."""
        for c in self.containers.values():
            if name_or_id in (c.id, c.name):
                return c
        raise KeyError(f"no container {name_or_id!r}; there are {sorted(c.name for c in self.containers.values())}")

    def finish(self, name_or_id: str, exit_code: int = 0, logs: str | bytes = b"") -> None:
        """The container exits with ``exit_code`` after printing ``logs``."""
        c = self.container(name_or_id)
        if c.started_at is None:
            c.started_at = self.now()
        c.logs += logs.encode() if isinstance(logs, str) else logs
        c.state, c.exit_code, c.finished_at = "exited", exit_code, self.now()
        self._event(c, "die", {"exitCode": str(exit_code)}, at=c.finished_at)

    def kill(self, name_or_id: str, oom: bool = False) -> None:
        """The container is killed (SIGKILL): it exits with 137; ``oom``: by the kernel's OOM killer (the
        engine then reports ``OOMKilled``)."""
        self.container(name_or_id).oom_killed = oom
        self.finish(name_or_id, KILLED)

    def write_file(self, name_or_id: str, path: str, content: str | bytes) -> None:
        """A file the container wrote at ``path``."""
        self.container(name_or_id).files[path] = content.encode() if isinstance(content, str) else content

    def objects(self) -> tuple[set[str], set[str], set[str]]:
        """Names of every container, network and volume."""
        return {c.name for c in self.containers.values()}, set(self.networks), set(self.volumes)

    # Engine --------------------------------------------------------------------------------------------
    def _call(self, method: str) -> None:
        self.calls.append(method)
        if not self.reachable:
            raise BackendUnavailableError(f"the {self.name} engine is not reachable (FakeEngine.reachable=False)")
        faults = self._faults.get(method, [])
        for fault in faults:
            if fault.after > 0:
                fault.after -= 1
                continue
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
            raise fault.error

    def _event(
        self, c: FakeContainer, action: str, attributes: dict[str, str] | None = None, at: datetime | None = None
    ) -> None:
        attrs = {**c.spec.labels, "name": c.name, **(attributes or {})}
        event = EngineEvent(time=at or self.now(), container=c.name, action=action, attributes=attrs)
        self.event_log.append(event)

    def ping(self) -> None:
        self._call("ping")

    def image_exists(self, image: str) -> bool:
        self._call("image_exists")
        return image in self.images

    def pull_image(self, image: str, progress: PullListener | None = None) -> None:
        self._call("pull_image")
        if image not in self.pullable:
            raise BackendError(f"pull access denied for {image}: no registry knows it")
        for report in self.pull_reports.get(image, []):
            if progress is not None:
                progress(report)
        self.images.add(image)

    def create_network(self, name: str, labels: dict[str, str]) -> None:
        self._call("create_network")
        if name in self.networks:
            raise BackendError(f"network with name {name} already exists")
        self.networks[name] = dict(labels)

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        self._call("create_volume")
        if name in self.volumes:
            raise BackendError(f"volume with name {name} already exists")
        self.volumes[name] = dict(labels)

    def create_container(self, spec: ContainerSpec) -> str:
        self._call("create_container")
        if any(c.name == spec.name for c in self.containers.values()):
            raise BackendError(f"the container name {spec.name!r} is already in use")
        if spec.image not in self.images:
            raise BackendError(f"no such image: {spec.image}")
        for volume in spec.volumes:
            self.volumes.setdefault(volume, {})  # engines create a named volume on first mount
        if spec.network is not None and spec.network not in self.networks:
            raise BackendError(f"network {spec.network} not found")
        c = FakeContainer(
            id=f"fake{next(self._ids):08x}",
            spec=spec,
            env=spec.environment(reveal_secrets=True),
            created=self.now(),
        )
        self.containers[c.id] = c
        self._event(c, "create")
        return c.id

    def put_files(self, container: str, directory: str, files: dict[str, str]) -> None:
        self._call("put_files")
        c = self._get(container)
        for path, content in files.items():
            c.files[f"{directory.rstrip('/')}/{path}"] = content.encode()

    def put_archive(self, container: str, directory: str, data: bytes) -> None:
        import io
        import tarfile

        self._call("put_archive")
        c = self._get(container)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    c.files[f"{directory.rstrip('/')}/{member.name}"] = handle.read()

    def get_file(self, container: str, path: str) -> bytes | None:
        self._call("get_file")
        return self._get(container).files.get(path)

    def get_archive(self, container: str, path: str) -> Iterator[bytes] | None:
        """A tar of the fake container's files at or under ``path`` (top entry: its last component)."""
        self._call("get_archive")
        root = path.rstrip("/")
        top = root.rsplit("/", 1)[-1]
        found = {
            top + p[len(root) :]: data
            for p, data in self._get(container).files.items()
            if p == root or p.startswith(root + "/")
        }
        if not found:
            return None
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in sorted(found.items()):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        payload = buf.getvalue()
        return iter([payload[i : i + 4096] for i in range(0, len(payload), 4096)])

    def start_container(self, container: str) -> None:
        self._call("start_container")
        c = self._get(container)
        c.state, c.started_at = "running", self.now()
        self._event(c, "start")
        if self.on_start is not None:
            self.on_start(c)

    def list_containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        self._call("list_containers")
        return [c.info() for c in self.containers.values() if _matches(dict(c.spec.labels), labels)]

    def list_container_summaries(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """As the engines' list calls report them: whole-second creation times, no start or finish times, no
        OOM kill (the least :meth:`ContainerEngine.list_container_summaries` promises)."""
        self._call("list_container_summaries")
        return [
            ContainerInfo(
                id=c.id,
                name=c.name,
                labels=dict(c.spec.labels),
                state=c.state,
                exit_code=c.exit_code if c.state in ("exited", "stopped", "dead") else None,
                created=c.created.replace(microsecond=0),
            )
            for c in self.containers.values()
            if _matches(dict(c.spec.labels), labels)
        ]

    def stop_container(self, container: str, timeout: float) -> None:
        self._call("stop_container")
        c = self.containers.get(container)
        if c is not None and c.state in ("running", "paused", "restarting"):  # a created one stays as it is
            self.finish(c.id, 143)

    def remove_container(self, container: str) -> None:
        self._call("remove_container")
        c = self.containers.pop(container, None)
        if c is not None:
            self._event(c, "destroy")

    def remove_network(self, name: str) -> None:
        self._call("remove_network")
        self.networks.pop(name, None)

    def release_network(self, name: str, containers: list[str]) -> bool:
        self._call("release_network")
        if any(c.spec.network == name and c.state in ("running", "created") for c in self.containers.values()):
            raise BackendError(f"network {name} has active endpoints")
        self.networks.pop(name, None)
        return True

    def remove_volume(self, name: str) -> None:
        self._call("remove_volume")
        if any(name in c.spec.volumes for c in self.containers.values()):
            raise BackendError(f"volume {name} is in use")
        self.volumes.pop(name, None)

    def list_networks(self, labels: dict[str, str]) -> list[str]:
        self._call("list_networks")
        return [n for n, n_labels in self.networks.items() if _matches(n_labels, labels)]

    def list_volumes(self, labels: dict[str, str]) -> list[str]:
        self._call("list_volumes")
        return [v for v, v_labels in self.volumes.items() if _matches(v_labels, labels)]

    def logs(self, container: str, follow: bool) -> Iterator[bytes]:
        self._call("logs")
        c = self.containers.get(container)
        if c is not None and c.logs:
            yield c.logs

    def events(self, labels: dict[str, str], since: datetime, until: datetime) -> list[EngineEvent]:
        self._call("events")
        return [e for e in self.event_log if since <= e.time <= until and _matches(e.attributes, labels)]

    def native_request(self, spec: ContainerSpec, *, reveal_secrets: bool = False) -> dict[str, Any]:
        return {"fake": True, **super().native_request(spec, reveal_secrets=reveal_secrets)}

    def _get(self, container: str) -> FakeContainer:
        c = self.containers.get(container)
        if c is None:
            raise BackendError(f"no such container: {container}")
        return c
