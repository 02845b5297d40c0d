"""Configuration of the Docker backend."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from kubeflow_trainer_containers.config import ContainerBackendConfig, host_from_container_host


class DockerBackendConfig(ContainerBackendConfig):
    """Docker backend settings (plus the shared container settings: pull policy, image, prefixes...).

    Args:
        host: Engine URL (``unix:///var/run/docker.sock``, ``tcp://...``). Default: found the way the docker
            CLI finds it (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``, the default socket).
        container_host: Upstream's name for ``host`` (used when ``host`` is not given).
        timeout: Seconds an engine API call may take.
    """

    host: str | None = None
    timeout: float = 60

    @model_validator(mode="before")
    @classmethod
    def _container_host(cls, data: Any) -> Any:
        return host_from_container_host(data)
