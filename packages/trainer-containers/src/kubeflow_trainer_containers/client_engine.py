"""What the Docker and Podman engines share: both SDKs (docker-py, podman-py) have the same object model
(``client.containers.get(id).start()``...), error classes of the same shape and the same log streams.

An engine distribution subclasses :class:`ClientEngine`, names its SDK's error classes and its client, and
writes only what differs (create requests, listing filters, events). Methods decorated with
:func:`translate_errors` turn SDK failures into the SDK's typed errors.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

from kubeflow_trainer.errors import BackendError, BackendUnavailableError
from kubeflow_trainer_containers.engine import ContainerEngine, LayerProgress, PullListener, split_image
from kubeflow_trainer_containers.request import ContainerSpec

F = TypeVar("F", bound=Callable[..., Any])


def translate_errors(func: F) -> F:
    """Engine failures become the SDK's errors: unreachable -> BackendUnavailableError, else BackendError
    (see :meth:`ClientEngine.translate`); errors that are already the SDK's pass unchanged."""

    @functools.wraps(func)
    def wrapper(self: ClientEngine, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(self, *args, **kwargs)
        except (BackendError, BackendUnavailableError):
            raise
        except Exception as exc:
            error = self.translate(exc, func.__name__)
            if error is None:
                raise
            raise error from exc

    return wrapper  # type: ignore[return-value]


_DOCKER_STATES: dict[str, Any] = {
    "Already exists": "present",
    "Pulling fs layer": "waiting",
    "Waiting": "waiting",
    "Downloading": "downloading",
    "Verifying Checksum": "downloading",
    "Download complete": "extracting",
    "Extracting": "extracting",
    "Pull complete": "done",
}


def docker_layer_progress(report: dict[str, Any]) -> LayerProgress | None:
    """A Docker pull report as a :class:`LayerProgress`; None for reports about no layer (``Digest: ...``)."""
    state = _DOCKER_STATES.get(str(report.get("status", "")))
    layer = report.get("id")
    if state is None or not layer:
        return None
    detail = report.get("progressDetail") or {}
    current, total = detail.get("current"), detail.get("total")
    if state == "extracting":  # bytes extracted are not bytes downloaded: the download is complete
        current, total = None, None
    return LayerProgress(str(layer), state, current, total)


class ClientEngine(ContainerEngine):
    """A :class:`ContainerEngine` on a docker-py-like client (docker-py, podman-py)."""

    display_name: ClassVar[str] = ""
    """How error messages name the engine (``the Docker engine``)."""
    unreachable_errors: ClassVar[tuple[type[Exception], ...]] = ()
    """Transport errors meaning the engine does not answer (``requests``' ConnectionError, Timeout)."""
    api_error: ClassVar[type[Exception]] = Exception
    """The SDK's error for an answer that refuses a call (has ``explanation``)."""
    sdk_error: ClassVar[type[Exception]] = Exception
    """The SDK's base error; other subclasses mean the client could not talk to the engine."""
    not_found: ClassVar[type[Exception]] = LookupError
    """The SDK's error for an object that does not exist."""
    remove_container_options: ClassVar[dict[str, Any]] = {"force": True}
    remove_network_options: ClassVar[dict[str, Any]] = {}
    _client: Any = None

    @property
    @abc.abstractmethod
    def client(self) -> Any:
        """The SDK client, created on first use."""

    @abc.abstractmethod
    def unavailable(self, exc: Exception) -> BackendUnavailableError:
        """The error for an engine that does not answer: where it was looked for and how to start it."""

    def translate(self, exc: Exception, operation: str) -> BackendError | BackendUnavailableError | None:
        """The SDK's error for an engine failure during ``operation``; None for errors that are not the engine's."""
        if isinstance(exc, self.unreachable_errors):
            return self.unavailable(exc)
        if isinstance(exc, self.api_error):
            return self.refused(exc, operation)
        if isinstance(exc, self.sdk_error):
            return self.unavailable(exc)
        return None

    def refused(self, exc: Exception, operation: str) -> BackendError | BackendUnavailableError:
        """The error for an answer refusing ``operation``."""
        return BackendError(f"{self.display_name} refused {operation}: {getattr(exc, 'explanation', None) or exc}")

    @translate_errors
    def start_container(self, container: str) -> None:
        self.client.containers.get(container).start()

    @translate_errors
    def stop_container(self, container: str, timeout: float) -> None:
        try:
            self.client.containers.get(container).stop(timeout=int(timeout))
        except self.not_found:
            pass

    @translate_errors
    def remove_container(self, container: str) -> None:
        try:
            self.client.containers.get(container).remove(**self.remove_container_options)
        except self.not_found:
            pass

    @translate_errors
    def remove_network(self, name: str) -> None:
        try:
            self.client.networks.get(name).remove(**self.remove_network_options)
        except self.not_found:
            pass

    @translate_errors
    def release_network(self, name: str, containers: list[str]) -> bool:
        try:
            network = self.client.networks.get(name)
        except self.not_found:
            return True
        for container in containers:  # Podman refuses to remove a network that stopped containers still name
            try:
                network.disconnect(container)
            except self.not_found:
                pass
        network.remove()  # never forced: Podman's force would remove the containers too
        return True

    @translate_errors
    def remove_volume(self, name: str) -> None:
        try:
            self.client.volumes.get(name).remove(force=True)
        except self.not_found:
            pass

    @translate_errors
    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        self.client.volumes.create(name=name, labels=labels)

    @translate_errors
    def pull_image(self, image: str, progress: PullListener | None = None) -> None:
        """Docker's pull stream (Podman answers it on its compatible API too): one JSON report per layer event
        with byte counts; an ``error`` report ends the pull."""
        repo, tag = split_image(image)
        try:
            for report in self.pull_stream(repo, tag):
                if report.get("error") or report.get("errorDetail"):
                    detail = report.get("errorDetail") or {}
                    raise BackendError(str(report.get("error") or detail.get("message") or report))
                layer = docker_layer_progress(report)
                if layer is not None and progress is not None:
                    progress(layer)
        except self.api_error as exc:
            raise BackendError(str(getattr(exc, "explanation", None) or exc)) from exc

    def pull_stream(self, repo: str, tag: str) -> Iterator[dict[str, Any]]:
        """The engine's decoded pull reports (Docker's ``POST /images/create`` stream)."""
        return iter(self.client.api.pull(repo, tag=tag, stream=True, decode=True))

    @translate_errors
    def create_container(self, spec: ContainerSpec) -> str:
        kwargs = self.create_kwargs(spec)
        container = self.client.containers.create(kwargs.pop("image"), **kwargs)
        return str(container.id)

    def create_kwargs(self, spec: ContainerSpec) -> dict[str, Any]:
        """What :meth:`create_container` passes to the SDK's ``containers.create``: the native request with
        the credentials' values. Engines convert SDK objects here (docker-py's DeviceRequest)."""
        return self.native_request(spec, reveal_secrets=True)

    def logs(self, container: str, follow: bool) -> Iterator[bytes]:
        try:
            ctr = self.client.containers.get(container)
            if not follow:
                data = ctr.logs(stdout=True, stderr=True)
                yield data if isinstance(data, bytes) else b"".join(data)
                return
            for chunk in ctr.logs(stdout=True, stderr=True, stream=True, follow=True):
                yield chunk if isinstance(chunk, bytes) else bytes([chunk])
        except self.not_found:
            return
        except (*self.unreachable_errors, self.sdk_error) as exc:
            raise self.unavailable(exc) from exc

    def timed_logs(self, container: str) -> Iterator[bytes] | None:
        try:
            data = self.client.containers.get(container).logs(stdout=True, stderr=True, timestamps=True)
        except self.not_found:
            return iter(())
        except (*self.unreachable_errors, self.sdk_error) as exc:
            raise self.unavailable(exc) from exc
        return iter([data if isinstance(data, bytes) else b"".join(data)])

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
