"""Upstream's ``kubeflow.trainer.constants`` package (``from kubeflow_trainer.constants import constants``)."""

from kubeflow_trainer.constants import constants

__all__ = ["constants"]
