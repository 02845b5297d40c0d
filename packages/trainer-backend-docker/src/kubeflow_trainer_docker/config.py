"""Configuration of the Docker backend."""

from __future__ import annotations

from kubeflow_trainer.containers import ContainerBackendConfig


class DockerBackendConfig(ContainerBackendConfig):
    """Docker backend settings (plus the shared container settings: pull policy, image, prefixes...).

    Args:
        host: Engine URL (``unix:///var/run/docker.sock``, ``tcp://...``). Default: found the way the docker
            CLI finds it (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``, the default socket).
        timeout: Seconds an engine API call may take.
    """

    host: str | None = None
    timeout: float = 60
