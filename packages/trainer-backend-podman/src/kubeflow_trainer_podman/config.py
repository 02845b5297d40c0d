"""Configuration of the Podman backend."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kubeflow_trainer_containers.config import ContainerBackendConfig, host_from_container_host

ROOTFUL_SOCKET = "/run/podman/podman.sock"


class Ulimit(BaseModel):
    """One resource limit of the node containers (``nofile``, ``nproc``...)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    soft: int = Field(ge=0)
    hard: int = Field(ge=0)


def default_socket() -> str:
    """``CONTAINER_HOST``; else the rootful socket for root; else ``$XDG_RUNTIME_DIR/podman/podman.sock``."""
    if os.environ.get("CONTAINER_HOST"):
        return os.environ["CONTAINER_HOST"]
    if os.geteuid() == 0:
        return f"unix://{ROOTFUL_SOCKET}"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return f"unix://{runtime_dir}/podman/podman.sock"


class PodmanBackendConfig(ContainerBackendConfig):
    """Podman backend settings (plus the shared container settings).

    Args:
        host: Service URL. Default: ``CONTAINER_HOST``, else the rootful socket ``/run/podman/podman.sock``
            (root), else the rootless ``$XDG_RUNTIME_DIR/podman/podman.sock``.
        ulimits: Resource limits of node containers, e.g. ``[Ulimit(name="nofile", soft=16384, hard=16384)]``
            (needed where the engine's defaults exceed what the host allows).
        container_host: Upstream's name for ``host`` (used when ``host`` is not given).
        timeout: Seconds an API call may take.
    """

    host: str = Field(default_factory=default_socket)
    ulimits: list[Ulimit] = Field(default_factory=list)
    timeout: float = 60

    @model_validator(mode="before")
    @classmethod
    def _container_host(cls, data: Any) -> Any:
        return host_from_container_host(data)
