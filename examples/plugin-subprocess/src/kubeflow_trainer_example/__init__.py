"""Example third-party backend: each job is a child Python process, recorded in a directory."""

from kubeflow_trainer_example.config import SubprocessBackendConfig

__all__ = ["SubprocessBackendConfig"]
