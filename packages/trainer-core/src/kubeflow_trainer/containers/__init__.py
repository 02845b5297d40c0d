"""The engine-neutral container backend shared by the Docker and Podman distributions.

Imports no container SDK: each engine distribution implements
:class:`~kubeflow_trainer.containers.engine.ContainerEngine` with its own client.
"""

from kubeflow_trainer.containers.backend import ContainerBackend, ContainerBackendConfig
from kubeflow_trainer.containers.engine import ContainerEngine, ContainerInfo, ContainerSpec, EngineEvent

__all__ = [
    "ContainerBackend",
    "ContainerBackendConfig",
    "ContainerEngine",
    "ContainerInfo",
    "ContainerSpec",
    "EngineEvent",
]
