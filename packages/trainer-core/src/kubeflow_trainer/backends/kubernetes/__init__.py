"""Upstream's ``kubeflow.trainer.backends.kubernetes`` (alias package)."""
