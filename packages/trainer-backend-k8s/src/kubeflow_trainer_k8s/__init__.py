"""Kubernetes backend for the Kubeflow Trainer SDK (``TrainerClient()``, the default)."""

from kubeflow_trainer_k8s.config import KubernetesBackendConfig

__all__ = ["KubernetesBackendConfig"]
