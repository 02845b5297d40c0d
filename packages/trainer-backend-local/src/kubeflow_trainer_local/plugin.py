"""Entry-point module of the LocalProcess backend: registers it, imports nothing heavy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubeflow_trainer import Backend, BackendSpec, Capability, hookimpl
from kubeflow_trainer_local.config import LocalProcessBackendConfig

CAPABILITIES = frozenset(
    {
        Capability.MULTI_NODE,
        Capability.MULTI_PROCESS,
        Capability.CPU_LIMIT,
        Capability.PACKAGES,
        Capability.LABELS,
        Capability.ANNOTATIONS,
        Capability.ACTIVE_DEADLINE,
        Capability.EVENTS,
        Capability.PERSISTENCE,
        Capability.INITIALIZERS,
    }
)
"""Not declared, so refused before a job starts: GPU (no device partitioning yet), memory limits, images,
container and builtin trainers, runtime patches."""


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
