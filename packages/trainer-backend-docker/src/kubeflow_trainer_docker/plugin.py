"""Entry-point module of the Docker backend: registers it, imports no Docker SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubeflow_trainer import Backend, BackendConfig, BackendSpec, hookimpl
from kubeflow_trainer_containers import CAPABILITIES as CONTAINER_CAPABILITIES
from kubeflow_trainer_docker.config import DockerBackendConfig

if TYPE_CHECKING:
    from kubeflow_trainer.doctor import Check

CAPABILITIES = CONTAINER_CAPABILITIES


def _factory(config: DockerBackendConfig) -> Backend[Any]:
    from kubeflow_trainer_containers import ContainerBackend
    from kubeflow_trainer_docker.engine import DockerEngine

    return ContainerBackend(config, DockerEngine(config))


@hookimpl
def trainer_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="docker",
            config_class=DockerBackendConfig,
            factory=_factory,
            capabilities=CAPABILITIES,
            description="Docker containers: one per node on a per-job network, multi-node torchrun.",
        )
    )


@hookimpl
def trainer_doctor_checks(backend: str, config: BackendConfig) -> list[Check] | None:
    """``kubeflow-trainer doctor -b docker``: the engine answers (version), the trainer image is present."""
    if backend != "docker" or not isinstance(config, DockerBackendConfig):
        return None
    from kubeflow_trainer_containers.doctor import engine_checks
    from kubeflow_trainer_docker.engine import DockerEngine

    engine = DockerEngine(config)
    try:
        return engine_checks("Docker", engine, config)
    finally:
        engine.close()
