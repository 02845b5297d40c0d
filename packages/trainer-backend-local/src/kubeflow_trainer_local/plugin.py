"""Entry-point module of the LocalProcess backend: registers it, imports nothing heavy."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubeflow_trainer import Backend, BackendConfig, BackendSpec, Capability, hookimpl
from kubeflow_trainer.options import MAX_RESTARTS
from kubeflow_trainer_local.config import LocalProcessBackendConfig

if TYPE_CHECKING:
    from kubeflow_trainer.doctor import Check

CAPABILITIES = frozenset(
    {
        Capability.MULTI_NODE,
        Capability.MULTI_PROCESS,
        Capability.CPU_LIMIT,
        Capability.PACKAGES,
        Capability.LABELS,
        Capability.ANNOTATIONS,
        Capability.ACTIVE_DEADLINE,
        MAX_RESTARTS,
        Capability.EVENTS,
        Capability.PERSISTENCE,
        Capability.INITIALIZERS,
        Capability.OUTPUTS,
        Capability.DATA_DIRS,
        Capability.WORKSPACE,
    }
)
"""Not declared, so refused before a job starts: GPU (no device partitioning yet), memory limits, images,
container and builtin trainers, runtime patches. Not declared either: read-only data directories (the job's
processes run as the user; a data directory is its own path, writable if the user can write it)."""


def _factory(config: LocalProcessBackendConfig) -> Backend[Any]:
    from kubeflow_trainer_local.backend import LocalProcessBackend

    return LocalProcessBackend(config)


@hookimpl
def trainer_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="local",
            config_class=LocalProcessBackendConfig,
            factory=_factory,
            capabilities=CAPABILITIES,
            description="Local processes: cached virtualenvs, torchrun, multi-node on one machine.",
        )
    )


@hookimpl
def trainer_doctor_checks(backend: str, config: BackendConfig) -> list[Check] | None:
    """``kubeflow-trainer doctor -b local``: Python, uv/pip, writable state and cache directories."""
    if backend != "local" or not isinstance(config, LocalProcessBackendConfig):
        return None
    from kubeflow_trainer_local.doctor import checks

    return checks(config)
