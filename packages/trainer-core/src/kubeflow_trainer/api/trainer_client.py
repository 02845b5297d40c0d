"""Upstream's ``kubeflow.trainer.api.trainer_client``: :class:`~kubeflow_trainer.TrainerClient`."""

from kubeflow_trainer.client import TrainerClient

__all__ = ["TrainerClient"]
