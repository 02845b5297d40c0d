"""Entry-point module of the Kubernetes backend: registers it, imports no Kubernetes client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubeflow_trainer import Backend, BackendSpec, Capability, hookimpl
from kubeflow_trainer_k8s.config import KubernetesBackendConfig

CAPABILITIES = frozenset(
    {
        Capability.MULTI_NODE,
        Capability.MULTI_PROCESS,
        Capability.GPU,
        Capability.CPU_LIMIT,
        Capability.MEMORY_LIMIT,
        Capability.IMAGE,
        Capability.CONTAINER_TRAINER,
        Capability.BUILTIN_TRAINER,
        Capability.PACKAGES,
        Capability.INITIALIZERS,
        Capability.LABELS,
        Capability.ANNOTATIONS,
        Capability.ACTIVE_DEADLINE,
        Capability.RUNTIME_PATCH,
        Capability.CALLABLE_OPTIONS,
        Capability.EVENTS,
        Capability.PERSISTENCE,
    }
)


def _factory(config: KubernetesBackendConfig) -> Backend[Any]:
    from kubeflow_trainer_k8s.backend import KubernetesBackend

    return KubernetesBackend(config)


@hookimpl
def trainer_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="kubernetes",
            config_class=KubernetesBackendConfig,
            factory=_factory,
            capabilities=CAPABILITIES,
            description="Kubeflow Trainer TrainJobs on a Kubernetes cluster.",
        )
    )
