"""Entry-point module of the Podman backend: registers it, imports no Podman SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubeflow_trainer import Backend, BackendConfig, BackendSpec, hookimpl
from kubeflow_trainer_containers import CAPABILITIES as CONTAINER_CAPABILITIES
from kubeflow_trainer_podman.config import PodmanBackendConfig

if TYPE_CHECKING:
    from kubeflow_trainer.doctor import Check

CAPABILITIES = CONTAINER_CAPABILITIES


def _factory(config: PodmanBackendConfig) -> Backend[Any]:
    from kubeflow_trainer_containers import ContainerBackend
    from kubeflow_trainer_podman.engine import PodmanEngine

    return ContainerBackend(config, PodmanEngine(config))


@hookimpl
def trainer_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="podman",
            config_class=PodmanBackendConfig,
            factory=_factory,
            capabilities=CAPABILITIES,
            description="Podman containers: one per node on a per-job network (DNS on), multi-node torchrun.",
        )
    )


@hookimpl
def trainer_doctor_checks(backend: str, config: BackendConfig) -> list[Check] | None:
    """``kubeflow-trainer doctor -b podman``: the engine answers (version), the trainer image is present."""
    if backend != "podman" or not isinstance(config, PodmanBackendConfig):
        return None
    from kubeflow_trainer_containers.doctor import engine_checks
    from kubeflow_trainer_podman.engine import PodmanEngine

    engine = PodmanEngine(config)
    try:
        return engine_checks("Podman", engine, config)
    finally:
        engine.close()
