"""The Podman engine for the shared container backend, on podman-py against Podman's REST service."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, ClassVar

import podman.errors
import requests.exceptions
import urllib3.exceptions
from podman import PodmanClient

from kubeflow_trainer.errors import BackendError, BackendUnavailableError
from kubeflow_trainer_containers import ContainerInfo, ContainerSpec, EngineEvent
from kubeflow_trainer_containers.client_engine import ClientEngine, translate_errors
from kubeflow_trainer_containers.engine import (
    LayerProgress,
    PullListener,
    demux_frames,
    info_from_inspect,
    info_from_summary,
    label_filters,
    split_image,
    tar_files,
    untar_file,
)
from kubeflow_trainer_podman.config import PodmanBackendConfig

CPU_PERIOD = 100_000


def loopback_registry(repository: str) -> bool:
    """True when the image's registry is this machine (``localhost``, ``127.x``, ``[::1]``, with a port).
    Docker pulls from those over plain HTTP by default (its insecure-registry default is 127.0.0.0/8); Podman
    is asked to do the same, so a registry run beside the engine works on both."""
    first = repository.split("/", 1)[0]
    if "/" not in repository or not ("." in first or ":" in first or first == "localhost"):
        return False  # no registry part: the engine's default registries
    host = first.rsplit(":", 1)[0] if not first.endswith("]") else first
    return host in ("localhost", "[::1]") or host.startswith("127.")


ARCHIVE_CHUNK = 1 << 20
"""Bytes per chunk of a streamed archive (``get_job_outputs``)."""


class PodmanEngine(ClientEngine):
    """podman-py against ``config.host``."""

    name = "podman"
    display_name = "the Podman service"
    unreachable_errors = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
    api_error = podman.errors.APIError
    sdk_error = podman.errors.PodmanError
    not_found = podman.errors.NotFound
    remove_container_options: ClassVar[dict[str, Any]] = {"force": True, "v": False}
    remove_network_options: ClassVar[dict[str, Any]] = {"force": True}

    def __init__(self, config: PodmanBackendConfig) -> None:
        self.config = config
        self._client: PodmanClient | None = None

    def unavailable(self, exc: Exception) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"cannot reach the Podman service at {self.config.host}: {exc}. Start it with "
            f"`podman system service --time=0 {self.config.host}`, or set CONTAINER_HOST / "
            "PodmanBackendConfig(host=...)."
        )

    def refused(self, exc: Exception, operation: str) -> BackendError | BackendUnavailableError:
        if getattr(exc, "response", None) is None:  # no HTTP answer at all: the socket is not there or refuses
            return self.unavailable(exc)
        return super().refused(exc, operation)

    @property
    def client(self) -> PodmanClient:
        if self._client is None:
            self._client = PodmanClient(base_url=self.config.host, timeout=self.config.timeout)
        return self._client

    @translate_errors
    def ping(self) -> None:
        if not self.client.ping():
            raise self.unavailable(RuntimeError("ping failed"))

    @translate_errors
    def image_exists(self, image: str) -> bool:
        return bool(self.client.images.exists(image))

    @translate_errors
    def pull_image(self, image: str, progress: PullListener | None = None) -> None:
        """Podman's own pull stream: a ``Copying blob <digest>`` line when a layer starts copying (``skipped:
        already exists`` when present), ``Copying config`` once every layer is copied; no byte counts."""
        repo, tag = split_image(image)
        copying: list[str] = []
        try:
            reports: Iterator[dict[str, Any]] = iter(
                self.client.images.pull(  # type: ignore[arg-type]  # a stream of decoded reports with stream=True
                    repo, tag=tag, stream=True, decode=True, tls_verify=not loopback_registry(repo)
                )
            )
            for report in reports:
                if report.get("error"):
                    raise BackendError(str(report["error"]))
                line = str(report.get("stream", "")).strip()
                if line.startswith("Copying blob "):
                    layer = line.split()[2].removeprefix("sha256:")[:12]
                    present = "skipped" in line or "already exists" in line
                    if not present:
                        copying.append(layer)
                    if progress is not None:
                        progress(LayerProgress(layer, "present" if present else "downloading"))
                elif (line.startswith("Copying config") or report.get("images")) and copying:
                    for layer in copying:
                        if progress is not None:
                            progress(LayerProgress(layer, "done"))
                    copying = []
        except self.api_error as exc:
            raise BackendError(str(getattr(exc, "explanation", None) or exc)) from exc

    @translate_errors
    def create_network(self, name: str, labels: dict[str, str]) -> None:
        # DNS must be on for node 0 to be reachable by its container name (podman-py's default is off).
        self.client.networks.create(name, dns_enabled=True, labels=labels)

    def native_request(self, spec: ContainerSpec, *, reveal_secrets: bool = False) -> dict[str, Any]:
        """The keyword arguments of podman-py's ``containers.create`` for ``spec`` (image included)."""
        kwargs: dict[str, Any] = {
            "image": spec.image,
            "name": spec.name,
            "hostname": spec.hostname,
            "labels": dict(spec.labels),
            "environment": spec.environment(reveal_secrets=reveal_secrets),
            "volumes": spec.mounts(),
            "working_dir": spec.working_dir,
        }
        if spec.network is not None:
            kwargs["networks"] = {spec.network: {}}
        else:  # a one-node job: the engine's default bridge network (outbound access, no per-job network)
            kwargs["network_mode"] = "bridge"
        if spec.command:
            kwargs["command"] = list(spec.command)
        if spec.cpu:
            kwargs["cpu_period"] = CPU_PERIOD
            kwargs["cpu_quota"] = int(spec.cpu * CPU_PERIOD)
        if spec.memory:
            kwargs["mem_limit"] = spec.memory
        if spec.shm_size:
            kwargs["shm_size"] = spec.shm_size
        if spec.gpus:
            kwargs["devices"] = [f"nvidia.com/gpu={i}" for i in range(spec.gpus)]  # CDI device names
        if self.config.ulimits:
            kwargs["ulimits"] = [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in self.config.ulimits]
        return kwargs

    @translate_errors
    def stop_container(self, container: str, timeout: float) -> None:
        try:
            self.client.containers.get(container).stop(timeout=int(timeout))
        except podman.errors.NotFound:
            pass
        except requests.exceptions.JSONDecodeError:
            pass  # already stopped: the service answers 304 with no body, which podman-py 5.x parses as JSON

    def put_files(self, container: str, directory: str, files: dict[str, str]) -> None:
        self.put_archive(container, directory, tar_files(files))

    @translate_errors
    def put_archive(self, container: str, directory: str, data: bytes) -> None:
        # podman-py's put_archive only says True/False; the REST call keeps the service's reason. Podman 4.3
        # now and then refuses the first copy into a just-created container: one short retry covers it.
        problem = ""
        for attempt in range(3):
            response = self.client.api.put(f"/containers/{container}/archive", params={"path": directory}, data=data)
            if response.ok:
                return
            problem = f"HTTP {response.status_code}: {response.text.strip()[:300]}"
            time.sleep(0.2 * (attempt + 1))
        raise BackendError(f"could not copy the job's files into {directory} of the container ({problem})")

    @translate_errors
    def get_file(self, container: str, path: str) -> bytes | None:
        response = self.client.api.get(f"/containers/{container}/archive", params={"path": path})
        if response.status_code == 404 or (response.ok and not response.content):  # Podman 4: 200, no archive
            return None
        if not response.ok:
            raise BackendError(f"could not read {path} from the container (HTTP {response.status_code})")
        return untar_file(response.content)

    @translate_errors
    def get_archive(self, container: str, path: str) -> Iterator[bytes] | None:
        # podman-py's Container.get_archive reads the whole answer into memory first; the REST call with
        # stream=True hands the archive over chunk by chunk.
        response = self.client.api.get(f"/containers/{container}/archive", params={"path": path}, stream=True)
        if response.status_code == 404:
            response.close()
            return None
        if not response.ok:
            problem = response.text.strip()[:300]
            response.close()
            raise BackendError(f"could not read {path} from the container (HTTP {response.status_code}: {problem})")
        chunks: Iterator[bytes] = response.iter_content(chunk_size=ARCHIVE_CHUNK)
        return chunks

    def _listed(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """The libpod list of the containers carrying ``labels``, filtered by the service (one call). The REST
        call, not podman-py's: label filters sent by podman-py 5.x match nothing on Podman 4.3 (podman-py
        #542); the service's own filter is applied, and checked here again."""
        response = self.client.api.get(
            "/containers/json", params={"all": True, "filters": json.dumps(label_filters(labels))}
        )
        if not response.ok:
            raise BackendError(f"the Podman service refused to list containers: HTTP {response.status_code}")
        return [
            entry
            for entry in response.json() or []
            if all((entry.get("Labels") or {}).get(k) == v for k, v in labels.items())
        ]

    @translate_errors
    def list_containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        out = []
        for entry in self._listed(labels):
            try:  # the list lacks OOMKilled and exact times: the inspect result has them
                attrs = self.client.api.get(f"/containers/{entry['Id']}/json")
            except podman.errors.NotFound:
                continue
            if attrs.status_code == 404 or (attrs.status_code == 500 and "no such container" in attrs.text):
                continue  # removed meanwhile (Podman 4.3 answers a half-removed container with 500, not 404)
            if not attrs.ok:
                raise BackendError(f"the Podman service refused to inspect a container: HTTP {attrs.status_code}")
            data = attrs.json()
            out.append(
                info_from_inspect(data["Id"], str(data.get("Name", "")).lstrip("/"), entry.get("Labels") or {}, data)
            )
        return out

    @translate_errors
    def list_container_summaries(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """One libpod list call: state, exit code and times (whole seconds) without inspecting each container."""
        return [info_from_summary(entry) for entry in self._listed(labels)]

    @translate_errors
    def list_networks(self, labels: dict[str, str]) -> list[str]:
        nets = self.client.networks.list()
        return [n.name for n in nets if all((n.attrs.get("labels") or {}).get(k) == v for k, v in labels.items())]

    @translate_errors
    def list_volumes(self, labels: dict[str, str]) -> list[str]:
        vols = self.client.volumes.list()
        return [v.name for v in vols if all((v.attrs.get("Labels") or {}).get(k) == v2 for k, v2 in labels.items())]

    def logs(self, container: str, follow: bool) -> Iterator[bytes]:
        """As the shared engine's, but a followed stream has no read timeout: podman-py (unlike docker-py)
        keeps the client's ``timeout`` on streams, so a container silent for longer (a pip install) broke
        ``get_job_logs(follow=True)`` with a raw read timeout."""
        if not follow:
            yield from super().logs(container, follow)
            return
        try:
            response = self.client.api.get(
                f"/containers/{container}/logs",
                params={"follow": True, "stdout": True, "stderr": True},
                stream=True,
                timeout=(self.config.timeout, None),
            )
            if response.status_code == 404:
                return
            response.raise_for_status()
            yield from demux_frames(response.iter_content(chunk_size=None))  # see demux_frames
        except self.not_found:
            return
        except (*self.unreachable_errors, urllib3.exceptions.HTTPError, self.sdk_error) as exc:
            raise self.unavailable(exc) from exc

    @translate_errors
    def events(self, labels: dict[str, str], since: datetime, until: datetime) -> list[EngineEvent]:
        out = []
        # No `until` and no streaming: Podman 4.3 answers a query with `until` now and then with no events or
        # only some (measured: 3 of 40 identical queries); without it, 40 of 40 were complete. `until` is
        # applied here instead.
        params = {"since": int(since.timestamp()), "filters": json.dumps({"type": ["container"]}), "stream": False}
        response = self.client.api.get("/events", params=params)
        if not response.ok:
            raise BackendError(f"the Podman service refused the events query: HTTP {response.status_code}")
        for line in response.text.splitlines():
            if not line.strip():
                continue
            ev = json.loads(line)
            attrs = dict(ev.get("Actor", {}).get("Attributes", {}))
            if any(attrs.get(k) != v for k, v in labels.items()):  # labels travel as attributes; see list_containers
                continue
            if "containerExitCode" in attrs:
                attrs["exitCode"] = attrs["containerExitCode"]
            nanos = ev.get("timeNano") or int(ev.get("time", 0)) * 10**9
            if nanos / 1e9 > until.timestamp() + 1:
                continue
            out.append(
                EngineEvent(
                    time=datetime.fromtimestamp(nanos / 1e9, timezone.utc),
                    container=attrs.get("name", ""),
                    action=str(ev.get("Action") or ev.get("status", "")),
                    attributes={k: v for k, v in attrs.items() if "/" not in k},
                )
            )
        return out
