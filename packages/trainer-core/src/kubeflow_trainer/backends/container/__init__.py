"""Upstream's ``kubeflow.trainer.backends.container`` (alias package)."""
