"""Upstream's ``kubeflow.trainer.constants`` package (``from kubeflow_trainer.constants import constants``)."""
