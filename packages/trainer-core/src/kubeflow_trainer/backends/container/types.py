"""Upstream's ``kubeflow.trainer.backends.container.types``: ``ContainerBackendConfig``, ``TrainingRuntimeSource``."""

from kubeflow_trainer.containers.config import ContainerBackendConfig, TrainingRuntimeSource

__all__ = ["ContainerBackendConfig", "TrainingRuntimeSource"]
