"""Upstream's ``kubeflow.trainer.options.common``: the option every backend takes."""

from kubeflow_trainer.options import Name

__all__ = ["Name"]
