"""Upstream's ``kubeflow.trainer.backends.container.backend``: the shared container backend and its config."""

from kubeflow_trainer.containers.backend import ContainerBackend
from kubeflow_trainer.containers.config import ContainerBackendConfig

__all__ = ["ContainerBackend", "ContainerBackendConfig"]
