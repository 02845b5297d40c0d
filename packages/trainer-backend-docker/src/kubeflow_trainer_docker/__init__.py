"""Docker backend for the Kubeflow Trainer SDK (``TrainerClient(backend="docker")``)."""

from kubeflow_trainer_docker.config import DockerBackendConfig

__all__ = ["DockerBackendConfig"]
