"""The engine-neutral container backend shared by the Docker and Podman distributions.

Imports no container SDK: each engine distribution implements
:class:`~kubeflow_trainer.containers.engine.ContainerEngine` with its own client.
"""

from kubeflow_trainer.capabilities import Capability
from kubeflow_trainer.containers.backend import ContainerBackend
from kubeflow_trainer.containers.config import ContainerBackendConfig, TrainingRuntimeSource
from kubeflow_trainer.containers.engine import ContainerEngine, ContainerInfo, ContainerSpec, EngineEvent

CAPABILITIES = frozenset(
    {
        Capability.MULTI_NODE,
        Capability.MULTI_PROCESS,
        Capability.GPU,
        Capability.CPU_LIMIT,
        Capability.MEMORY_LIMIT,
        Capability.IMAGE,
        Capability.CONTAINER_TRAINER,
        Capability.PACKAGES,
        Capability.LABELS,
        Capability.ANNOTATIONS,
        Capability.EVENTS,
        Capability.PERSISTENCE,
        Capability.INITIALIZERS,
    }
)
"""What the shared container backend can do, on any engine. Not yet: deadlines, runtime patches."""

__all__ = [
    "CAPABILITIES",
    "ContainerBackend",
    "ContainerBackendConfig",
    "ContainerEngine",
    "ContainerInfo",
    "ContainerSpec",
    "EngineEvent",
    "TrainingRuntimeSource",
]
