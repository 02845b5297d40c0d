"""``ContainerBackendConfig``: upstream's container config, shared by the Docker and Podman backends.

``TrainerClient(backend_config=ContainerBackendConfig())`` picks the engine as upstream does: the one named by
``container_runtime``, else Docker, then Podman, the first whose installed backend answers a ping. The Docker
and Podman configs subclass it, so the same fields work there and select that engine directly.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubeflow_trainer.backend import BackendConfig
from kubeflow_trainer.errors import (
    BackendLoadError,
    BackendNotFoundError,
    BackendUnavailableError,
    InvalidRequestError,
)
from kubeflow_trainer.resources import parse_quantity

if TYPE_CHECKING:
    from kubeflow_trainer.backend import Backend, BackendSpec
    from kubeflow_trainer.registry import BackendRegistry
    from kubeflow_trainer.types import Runtime

IMAGE_ENV = "KUBEFLOW_TRAINER_IMAGE"
PULL_POLICY_ENV = "KUBEFLOW_TRAINER_PULL_POLICY"
PULL_POLICIES = ("IfNotPresent", "Always", "Never")
AUTO_DETECT_ORDER = ("docker", "podman")
"""Engines tried by auto-detection, in upstream's order."""
BUILTIN_SOURCE = "github://kubeflow/trainer"
"""Upstream's default runtime source: Kubeflow Trainer's published runtimes. Here it means the built-in copies
of those runtimes that ship with trainer-core (no network access when a client is created)."""


class TrainingRuntimeSource(BaseModel):
    """Where the container backends find training runtimes, in priority order (upstream's type).

    Args:
        sources: ``github://kubeflow/trainer`` (the runtimes Kubeflow Trainer publishes; built into
            trainer-core), ``file:///path`` or an absolute path to a ClusterTrainingRuntime file (``.json``;
            ``.yaml``/``.yml`` with PyYAML installed) or a directory of them. A runtime found in no source comes
            from the built-in ones, as upstream falls back to its packaged runtimes. Other ``github://``
            repositories and ``http(s)://`` URLs are refused: download the file and pass its path.
    """

    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(default_factory=lambda: [BUILTIN_SOURCE])

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        for source in value:
            if source.rstrip("/") == BUILTIN_SOURCE:
                continue
            path = source[len("file://") :] if source.startswith("file://") else source
            if source.startswith(("github://", "http://", "https://")) or not os.path.isabs(path):
                raise ValueError(
                    f"runtime source {source!r} is not supported: use {BUILTIN_SOURCE!r} (the built-in Kubeflow "
                    "Trainer runtimes), or download the ClusterTrainingRuntime file and pass file:///path/to/it "
                    "or its absolute path"
                )
        return value

    def runtimes(self) -> list[Runtime]:
        """The runtimes of every source, first source first for a name; then the built-in ones not yet seen."""
        from kubeflow_trainer.runtimes import builtin_runtimes, runtime_from_object

        found: dict[str, Runtime] = {}
        for source in self.sources:
            if source.rstrip("/") == BUILTIN_SOURCE:
                for runtime in builtin_runtimes():
                    found.setdefault(runtime.name, runtime)
                continue
            path = Path(source[len("file://") :] if source.startswith("file://") else source)
            for obj in _runtime_objects(path):
                try:
                    runtime = runtime_from_object(obj)
                except ValueError as exc:
                    raise InvalidRequestError(f"runtime source {source!r}: {exc}") from exc
                found.setdefault(runtime.name, runtime)
        for runtime in builtin_runtimes():
            found.setdefault(runtime.name, runtime)
        return list(found.values())


def _runtime_objects(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise InvalidRequestError(f"runtime source {str(path)!r} does not exist; pass an existing file or directory")
    files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".yaml", ".yml")) if path.is_dir() else [path]
    objects: list[dict[str, Any]] = []
    for file in files:
        text = file.read_text()
        if file.suffix == ".json":
            loaded: list[Any] = [json.loads(text)]
        else:
            try:
                yaml = importlib.import_module("yaml")
            except ImportError as exc:
                raise InvalidRequestError(
                    f"runtime source {str(file)!r} is YAML; install PyYAML (pip install pyyaml) or convert it to JSON"
                ) from exc
            loaded = list(yaml.safe_load_all(text))
        for obj in loaded:
            if isinstance(obj, dict) and obj.get("kind") in ("ClusterTrainingRuntime", "TrainingRuntime"):
                objects.append(obj)
    return objects


def host_from_container_host(data: Any) -> Any:
    """For the engine configs' ``model_validator(mode="before")``: ``container_host`` fills ``host`` when unset."""
    if isinstance(data, dict) and data.get("container_host") and data.get("host") is None:
        return {**data, "host": data["container_host"]}
    return data


class ContainerBackendConfig(BackendConfig):
    """Settings of the container backends (upstream's ``ContainerBackendConfig``, plus ours).

    Args:
        container_runtime: ``"docker"`` or ``"podman"``; ``None`` (default) auto-detects: Docker, then Podman,
            the first that answers.
        container_host: Engine URL (``unix:///path/to/socket``, ``tcp://...``). Default: ``DOCKER_HOST`` or the
            default socket for Docker, ``CONTAINER_HOST`` or the service socket for Podman.
        runtime_source: Where runtimes come from (:class:`TrainingRuntimeSource`).
        pull_policy: ``IfNotPresent`` (default), ``Always`` or ``Never`` (case-insensitive). Default from
            ``KUBEFLOW_TRAINER_PULL_POLICY``.
        auto_remove: ``delete_job`` also removes the job's workspace and output volumes (default). False keeps them.
        dataset_initializer_image / model_initializer_image: Images of the initializer steps (upstream's
            names; they win over ``initializer_image``). Default: the trainer's image, since upstream's
            ``ghcr.io`` defaults need a registry.
        initializer_timeout: Seconds an initializer step may take before it fails (default: no limit).
        image: Image used when the trainer names none, instead of the runtime's image. Default from
            ``KUBEFLOW_TRAINER_IMAGE``, so one script runs unchanged on every backend.
        label_prefix: Prefix of the labels that record jobs on containers, networks and volumes.
        network_prefix: Prefix of the per-job network and volume names.
        shm_size: ``/dev/shm`` size of node containers (default 1Gi; at most half the memory limit).
        stop_timeout: Seconds a node gets between SIGTERM and SIGKILL when stopped.
        initializer_image: Image of the dataset/model initializer steps (needs ``python3``; ``boto3`` and
            ``huggingface_hub`` are installed with pip when missing). Default: the trainer's image.
        cache_prefix: Prefix of the named volumes that hold initializer caches (``cache=...``) and workspaces
            (``<cache_prefix>ws-<digest>``, one per workspace content, shared by the jobs that ship it).
        workspace_limit: Largest workspace in bytes (default 512 MiB): its archive is built in memory and sent
            through the engine's API once per content.
        max_running_jobs: Admission: at most this many jobs of this backend run at once on the engine; the others
            wait, status ``Suspended``, in submission order, and start as running jobs end, with no client
            running (a detached queue runner per waiting job). Default: two per CPU, at least eight.
        queue_dir: Directory of the admission queue (lock files). Default:
            ``$XDG_STATE_HOME/kubeflow-trainer/<label_prefix>-<engine>-queue``.
    """

    pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field(
        default_factory=lambda: os.environ.get(PULL_POLICY_ENV) or "IfNotPresent", validate_default=True
    )
    auto_remove: bool = True
    container_host: str | None = None
    container_runtime: Literal["docker", "podman"] | None = None
    runtime_source: TrainingRuntimeSource = Field(default_factory=TrainingRuntimeSource)
    dataset_initializer_image: str | None = None
    model_initializer_image: str | None = None
    initializer_timeout: float | None = Field(default=None, gt=0)
    image: str | None = Field(default_factory=lambda: os.environ.get(IMAGE_ENV) or None)
    label_prefix: str = "trainer.kubeflow.org"
    network_prefix: str = "kft-"
    shm_size: str | int = "1Gi"
    stop_timeout: float = Field(default=5.0, ge=0)
    initializer_image: str | None = None
    cache_prefix: str = "kft-cache-"
    workspace_limit: int = Field(default=512 * 1024 * 1024, ge=1)
    max_running_jobs: int | None = Field(default=None, ge=1)
    queue_dir: str | None = None

    @field_validator("pull_policy", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        for policy in PULL_POLICIES:
            if isinstance(value, str) and value.lower() == policy.lower():
                return policy
        raise ValueError(f"pull_policy must be one of {', '.join(PULL_POLICIES)}; got {value!r}")

    @field_validator("shm_size")
    @classmethod
    def _shm(cls, value: str | int) -> str | int:
        parse_quantity(value, "shm_size")
        return value

    def select_backend(self, registry: BackendRegistry, prefer: str | None = None) -> tuple[BackendSpec, Backend[Any]]:
        """The engine backend this config runs on, created and pinged (upstream's auto-detection).

        ``container_runtime`` (or ``prefer``, the client's ``backend=``) names it; otherwise Docker, then
        Podman. Raises BackendNotFoundError when a named engine's backend is not installed, and
        BackendUnavailableError naming every attempt when no engine answers.
        """
        wanted = self.container_runtime or prefer
        names = (wanted,) if wanted else AUTO_DETECT_ORDER
        tried: list[str] = []
        settings = self.model_dump(exclude_unset=True)
        for name in names:
            try:
                spec = registry.get(name)
            except (BackendNotFoundError, BackendLoadError) as exc:
                if wanted:
                    raise
                tried.append(f"{name}: {exc}")
                continue
            config = spec.config_class(**settings)
            backend = registry.create(spec, config)
            engine = getattr(backend, "engine", None)
            try:
                if engine is not None:
                    engine.ping()
            except BackendUnavailableError as exc:
                backend.close()
                tried.append(f"{name}: {exc}")
                continue
            return spec, backend
        raise BackendUnavailableError(
            f"Could not connect to Docker or Podman (tried: {'; '.join(tried)}). Ensure Docker or Podman is installed "
            "(pip install 'trainer-core[docker]' / 'trainer-core[podman]') and running; to use a specific socket pass "
            "ContainerBackendConfig(container_host='unix:///path/to/socket'), or use LocalProcessBackendConfig() for "
            "non-containerized execution."
        )
