"""Entry-point module of the Kubernetes backend: registers it, imports no Kubernetes client."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubeflow_trainer import Backend, BackendConfig, BackendSpec, Capability, hookimpl
from kubeflow_trainer.options import MAX_RESTARTS
from kubeflow_trainer_k8s.config import KubernetesBackendConfig

if TYPE_CHECKING:
    from kubeflow_trainer.doctor import Check

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
        MAX_RESTARTS,
        Capability.RUNTIME_PATCH,
        Capability.CALLABLE_OPTIONS,
        Capability.EVENTS,
        Capability.PERSISTENCE,
        Capability.OUTPUT_STORAGE,
        Capability.WORKSPACE,
    }
)
"""Not declared: ``outputs`` (pods leave nothing behind: name an ``OutputStorage`` to get outputs back) and
``data-dirs`` (pods cannot see the caller's disk: put the data on a PVC and mount it with a RuntimePatch)."""


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


@hookimpl
def trainer_doctor_checks(backend: str, config: BackendConfig) -> list[Check] | None:
    """``kubeflow-trainer doctor -b kubernetes``: kube context, API server version, Trainer and JobSet CRDs."""
    if backend != "kubernetes" or not isinstance(config, KubernetesBackendConfig):
        return None
    from kubeflow_trainer_k8s.doctor import checks

    return checks(config)
