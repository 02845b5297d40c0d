"""LocalProcess backend for the Kubeflow Trainer SDK (``TrainerClient(backend="local")``)."""

from kubeflow_trainer_local.config import LocalProcessBackendConfig

__all__ = ["LocalProcessBackendConfig"]
