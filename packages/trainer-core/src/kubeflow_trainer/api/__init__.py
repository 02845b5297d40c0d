"""Upstream's ``kubeflow.trainer.api`` (alias package)."""

from kubeflow_trainer.client import TrainerClient

__all__ = ["TrainerClient"]
