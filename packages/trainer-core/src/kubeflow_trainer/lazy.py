"""Names that live in backend distributions but are reachable from ``kubeflow_trainer`` (upstream's layout).

``from kubeflow_trainer import LocalProcessBackendConfig`` works as with upstream's ``kubeflow.trainer``, yet
``import kubeflow_trainer`` imports no backend: the package's module ``__getattr__`` resolves these names on
first use. A name whose distribution is missing raises
:class:`~kubeflow_trainer.errors.BackendNotInstalledError` (an ``ImportError``) with the ``pip install`` hint.
"""

from __future__ import annotations

import importlib
from typing import Any

from kubeflow_trainer.errors import BackendNotInstalledError

BACKEND_NAMES: dict[str, tuple[str, str]] = {
    "LocalProcessBackendConfig": ("kubeflow_trainer_local.config", "local"),
    "LocalProcessBackend": ("kubeflow_trainer_local.backend", "local"),
    "KubernetesBackendConfig": ("kubeflow_trainer_k8s.config", "k8s"),
    "KubernetesBackend": ("kubeflow_trainer_k8s.backend", "k8s"),
    "DockerBackendConfig": ("kubeflow_trainer_docker.config", "docker"),
    "PodmanBackendConfig": ("kubeflow_trainer_podman.config", "podman"),
}
"""Name -> (module that defines it, ``trainer-core`` extra that installs it)."""

CONTAINER_NAMES: dict[str, str] = {
    "ContainerBackendConfig": "kubeflow_trainer_containers.config",
    "ContainerBackend": "kubeflow_trainer_containers.backend",
    "TrainingRuntimeSource": "kubeflow_trainer_containers.config",
}
"""Name -> module of trainer-containers (the container backend shared by Docker and Podman, installed with
either: ``trainer-core[docker]`` or ``trainer-core[podman]``)."""

SDK_NAMES: dict[str, str] = {
    "ActiveDeadlineSeconds": "kubeflow_trainer.options",
    "Annotations": "kubeflow_trainer.options",
    "Backend": "kubeflow_trainer.backend",
    "BackendConfig": "kubeflow_trainer.backend",
    "BackendSpec": "kubeflow_trainer.backend",
    "BuiltinTrainer": "kubeflow_trainer.types",
    "COMPLETE": "kubeflow_trainer.types",
    "CREATED": "kubeflow_trainer.types",
    "Capability": "kubeflow_trainer.capabilities",
    "CustomTrainer": "kubeflow_trainer.types",
    "CustomTrainerContainer": "kubeflow_trainer.types",
    "DATASET_PATH": "kubeflow_trainer.types",
    "DataCacheInitializer": "kubeflow_trainer.types",
    "DataDirs": "kubeflow_trainer.options",
    "DataFormat": "kubeflow_trainer.types",
    "DataType": "kubeflow_trainer.types",
    "DryRun": "kubeflow_trainer.backend",
    "Event": "kubeflow_trainer.types",
    "FAILED": "kubeflow_trainer.types",
    "HuggingFaceDatasetInitializer": "kubeflow_trainer.types",
    "HuggingFaceModelInitializer": "kubeflow_trainer.types",
    "Initializer": "kubeflow_trainer.types",
    "JobStatus": "kubeflow_trainer.types",
    "Labels": "kubeflow_trainer.options",
    "LoraConfig": "kubeflow_trainer.types",
    "Loss": "kubeflow_trainer.types",
    "MODEL_PATH": "kubeflow_trainer.types",
    "MaxRestarts": "kubeflow_trainer.options",
    "Name": "kubeflow_trainer.options",
    "OUTPUT_DIR_ENV": "kubeflow_trainer.outputs",
    "OutputStorage": "kubeflow_trainer.options",
    "Preparation": "kubeflow_trainer.types",
    "RUNNING": "kubeflow_trainer.types",
    "Runtime": "kubeflow_trainer.types",
    "RuntimeKind": "kubeflow_trainer.types",
    "RuntimePatch": "kubeflow_trainer.options",
    "RuntimeTrainer": "kubeflow_trainer.types",
    "S3DatasetInitializer": "kubeflow_trainer.types",
    "S3ModelInitializer": "kubeflow_trainer.types",
    "Step": "kubeflow_trainer.types",
    "TorchTuneConfig": "kubeflow_trainer.types",
    "TorchTuneInstructDataset": "kubeflow_trainer.types",
    "TrainJob": "kubeflow_trainer.types",
    "TrainJobTemplate": "kubeflow_trainer.types",
    "TrainerArgs": "kubeflow_trainer.options",
    "TrainerClient": "kubeflow_trainer.client",
    "TrainerCommand": "kubeflow_trainer.options",
    "TrainerStatus": "kubeflow_trainer.types",
    "TrainerType": "kubeflow_trainer.types",
    "UNKNOWN": "kubeflow_trainer.types",
    "UrlDatasetInitializer": "kubeflow_trainer.types",
    "UrlModelInitializer": "kubeflow_trainer.types",
    "Workspace": "kubeflow_trainer.workspace",
    "available_backends": "kubeflow_trainer.registry",
    "hookimpl": "kubeflow_trainer.backend",
}
"""The package's public names (``from kubeflow_trainer import TrainerClient``) -> the module defining each:
imported on first use, so ``import kubeflow_trainer`` stays cheap."""

CORE_NAMES: dict[str, str] = {
    "update_trainjob_status": "kubeflow_trainer.trainjob_status",
    "get_tpu_num_nodes": "kubeflow_trainer.tpu",
}
"""Names of trainer-core itself that are imported only when used (they are not needed to import the SDK)."""


def installed(name: str) -> bool:
    """Whether what provides the lazy name ``name`` is installed: a module-spec lookup, nothing is imported."""
    import importlib.util

    where = CONTAINER_NAMES.get(name) or BACKEND_NAMES.get(name, ("", ""))[0]
    return not where or importlib.util.find_spec(where.split(".")[0]) is not None


def star_names(names: list[str]) -> list[str]:
    """``__all__`` without the names whose backend distribution is not installed, so that upstream's
    ``from kubeflow_trainer import *`` works with any set of backends (naming one that is missing still
    raises the install hint)."""
    return [name for name in names if installed(name)]


def resolve(module: str, name: str) -> Any:
    """The object ``name`` of the package or alias module ``module``; AttributeError when it has none."""
    if name in SDK_NAMES:
        return getattr(importlib.import_module(SDK_NAMES[name]), name)
    if name in CORE_NAMES:
        return getattr(importlib.import_module(CORE_NAMES[name]), name)
    if name in CONTAINER_NAMES:
        return _container_name(name)
    if name not in BACKEND_NAMES:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    where, extra = BACKEND_NAMES[name]
    try:
        defining = importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name is None or not where.startswith(exc.name):
            raise
        raise BackendNotInstalledError(
            f"{name} is provided by the '{extra}' backend, which is not installed. Install it with "
            f"pip install 'trainer-core[{extra}]' (or trainer-backend-{extra}); installed backends are listed by "
            "kubeflow_trainer.available_backends()."
        ) from exc
    return getattr(defining, name)


def _container_name(name: str) -> Any:
    where = CONTAINER_NAMES[name]
    try:
        defining = importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name is None or not where.startswith(exc.name):
            raise
        raise BackendNotInstalledError(
            f"{name} is provided by trainer-containers, the container backend of the 'docker' and 'podman' "
            "backends, which is not installed. Install it with pip install 'trainer-core[docker]' or "
            "pip install 'trainer-core[podman]'; installed backends are listed by "
            "kubeflow_trainer.available_backends()."
        ) from exc
    return getattr(defining, name)
