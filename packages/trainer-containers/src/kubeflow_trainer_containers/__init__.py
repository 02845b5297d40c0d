"""The engine-neutral container backend shared by the Docker and Podman distributions (``trainer-containers``).

Imports no container SDK: each engine distribution implements
:class:`~kubeflow_trainer_containers.engine.ContainerEngine` with its own client
(:class:`~kubeflow_trainer_containers.client_engine.ClientEngine` holds what docker-py and podman-py share).
:class:`~kubeflow_trainer_containers.fake.FakeEngine` is an in-memory engine for tests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kubeflow_trainer.capabilities import Capability
from kubeflow_trainer.options import MAX_RESTARTS

if TYPE_CHECKING:
    from kubeflow_trainer_containers.backend import ContainerBackend
    from kubeflow_trainer_containers.config import ContainerBackendConfig, TrainingRuntimeSource
    from kubeflow_trainer_containers.engine import ContainerEngine, ContainerInfo, EngineEvent
    from kubeflow_trainer_containers.request import ContainerJobRequest, ContainerSpec

_LAZY = {
    "ContainerBackend": "backend",
    "ContainerBackendConfig": "config",
    "TrainingRuntimeSource": "config",
    "ContainerEngine": "engine",
    "ContainerInfo": "engine",
    "EngineEvent": "engine",
    "ContainerJobRequest": "request",
    "ContainerSpec": "request",
}
"""Imported on first use: the Docker and Podman plugin modules import this package during backend discovery,
which must stay fast (only CAPABILITIES and the config are needed then)."""

CAPABILITIES = frozenset(
    {
        Capability.MULTI_NODE,
        Capability.WORKSPACE,
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
        Capability.OUTPUTS,
        Capability.DATA_DIRS,
        Capability.READ_ONLY_DATA_DIRS,
        MAX_RESTARTS,
    }
)
"""What the shared container backend can do, on any engine. Not yet: deadlines, runtime patches."""

__all__ = [
    "CAPABILITIES",
    "ContainerBackend",
    "ContainerBackendConfig",
    "ContainerEngine",
    "ContainerInfo",
    "ContainerJobRequest",
    "ContainerSpec",
    "EngineEvent",
    "TrainingRuntimeSource",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
