"""Upstream's ``kubeflow.trainer.backends.localprocess`` (alias package)."""
