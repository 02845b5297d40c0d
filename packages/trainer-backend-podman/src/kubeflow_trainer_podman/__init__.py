"""Podman backend for the Kubeflow Trainer SDK (``TrainerClient(backend="podman")``)."""

from kubeflow_trainer_podman.config import PodmanBackendConfig

__all__ = ["PodmanBackendConfig"]
