"""Kubeflow Trainer SDK with pluggable execution backends.

``import kubeflow_trainer`` loads no backend and no container or Kubernetes SDK; backends are discovered
through the ``kubeflow_trainer.backends`` entry-point group the first time a client needs one. The backend
configs upstream exports from ``kubeflow.trainer`` (``LocalProcessBackendConfig``, ``ContainerBackendConfig``,
``KubernetesBackendConfig``) are importable from here too, resolved on first use (:mod:`kubeflow_trainer.lazy`).

The package's own names are imported on first use as well (PEP 562 ``__getattr__``; :data:`kubeflow_trainer.
lazy.SDK_NAMES` says where each one lives): ``import kubeflow_trainer`` costs the errors module only, and
``from kubeflow_trainer import TrainerClient`` loads the client and the public types (pydantic) it needs. A
tool that reads one module (a backend plugin importing ``kubeflow_trainer.backend``, the command line's
``--help``) does not pay for the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubeflow_trainer.errors import (
    AlreadyExistsError,
    BackendConflictError,
    BackendError,
    BackendLoadError,
    BackendNotFoundError,
    BackendNotInstalledError,
    BackendUnavailableError,
    FreeNameError,
    InvalidRequestError,
    JobFailedError,
    JobNotFoundError,
    JobTimeoutError,
    NotFoundError,
    RuntimeNotFoundError,
    StepNotFoundError,
    TrainerError,
    UnsupportedFeatureError,
    WorkspaceError,
    WorkspaceTooLargeError,
)
from kubeflow_trainer.lazy import star_names as _star_names

if TYPE_CHECKING:
    from kubeflow_trainer.backend import Backend, BackendConfig, BackendSpec, DryRun, hookimpl
    from kubeflow_trainer.capabilities import Capability
    from kubeflow_trainer.client import TrainerClient
    from kubeflow_trainer.options import (
        ActiveDeadlineSeconds,
        Annotations,
        DataDirs,
        Labels,
        MaxRestarts,
        Name,
        OutputStorage,
        RuntimePatch,
        TrainerArgs,
        TrainerCommand,
    )
    from kubeflow_trainer.outputs import OUTPUT_DIR_ENV
    from kubeflow_trainer.registry import available_backends
    from kubeflow_trainer.tpu import get_tpu_num_nodes
    from kubeflow_trainer.trainjob_status import update_trainjob_status
    from kubeflow_trainer.types import (
        COMPLETE,
        CREATED,
        DATASET_PATH,
        FAILED,
        MODEL_PATH,
        RUNNING,
        UNKNOWN,
        BuiltinTrainer,
        CustomTrainer,
        CustomTrainerContainer,
        DataCacheInitializer,
        DataFormat,
        DataType,
        Event,
        HuggingFaceDatasetInitializer,
        HuggingFaceModelInitializer,
        Initializer,
        JobStatus,
        LoraConfig,
        Loss,
        Preparation,
        Runtime,
        RuntimeKind,
        RuntimeTrainer,
        S3DatasetInitializer,
        S3ModelInitializer,
        Step,
        TorchTuneConfig,
        TorchTuneInstructDataset,
        TrainerStatus,
        TrainerType,
        TrainJob,
        TrainJobTemplate,
        UrlDatasetInitializer,
        UrlModelInitializer,
    )
    from kubeflow_trainer.workspace import Workspace
    from kubeflow_trainer_containers.config import ContainerBackendConfig, TrainingRuntimeSource

__version__ = "0.1.0"

__all__ = [
    "COMPLETE",
    "CREATED",
    "DATASET_PATH",
    "FAILED",
    "MODEL_PATH",
    "OUTPUT_DIR_ENV",
    "RUNNING",
    "UNKNOWN",
    "ActiveDeadlineSeconds",
    "AlreadyExistsError",
    "Annotations",
    "Backend",
    "BackendConfig",
    "BackendConflictError",
    "BackendError",
    "BackendLoadError",
    "BackendNotFoundError",
    "BackendNotInstalledError",
    "BackendSpec",
    "BackendUnavailableError",
    "BuiltinTrainer",
    "Capability",
    "ContainerBackendConfig",
    "CustomTrainer",
    "CustomTrainerContainer",
    "DataCacheInitializer",
    "DataDirs",
    "DataFormat",
    "DataType",
    "DryRun",
    "Event",
    "FreeNameError",
    "HuggingFaceDatasetInitializer",
    "HuggingFaceModelInitializer",
    "Initializer",
    "InvalidRequestError",
    "JobFailedError",
    "JobNotFoundError",
    "JobStatus",
    "JobTimeoutError",
    "KubernetesBackendConfig",
    "Labels",
    "LocalProcessBackendConfig",
    "LoraConfig",
    "Loss",
    "MaxRestarts",
    "Name",
    "NotFoundError",
    "OutputStorage",
    "Preparation",
    "Runtime",
    "RuntimeKind",
    "RuntimeNotFoundError",
    "RuntimePatch",
    "RuntimeTrainer",
    "S3DatasetInitializer",
    "S3ModelInitializer",
    "Step",
    "StepNotFoundError",
    "TorchTuneConfig",
    "TorchTuneInstructDataset",
    "TrainJob",
    "TrainJobTemplate",
    "TrainerArgs",
    "TrainerClient",
    "TrainerCommand",
    "TrainerError",
    "TrainerStatus",
    "TrainerType",
    "TrainingRuntimeSource",
    "UnsupportedFeatureError",
    "UrlDatasetInitializer",
    "UrlModelInitializer",
    "Workspace",
    "WorkspaceError",
    "WorkspaceTooLargeError",
    "available_backends",
    "get_tpu_num_nodes",
    "hookimpl",
    "update_trainjob_status",
]


for _missing in set(__all__) - set(_star_names(__all__)):  # a backend that is not installed: see lazy.star_names
    __all__.remove(_missing)


def __getattr__(name: str) -> Any:
    """Upstream's names that live in backend distributions or are imported on first use (see ``lazy``)."""
    from kubeflow_trainer.lazy import resolve

    value = resolve(__name__, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
