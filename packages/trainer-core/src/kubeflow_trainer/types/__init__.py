"""Public types of the SDK (pydantic v2), with the upstream ``kubeflow.trainer`` field names and defaults.

Code written for the upstream SDK ports by changing its imports. Invalid values fail at construction with a
``pydantic.ValidationError`` (a ``ValueError``) whose message names the field.

Like upstream's dataclasses they can be built positionally in upstream's field order
(``CustomTrainer(train)``, ``Runtime("name", trainer, kind)``) and passed to ``dataclasses.asdict`` /
``fields`` / ``replace`` (:mod:`kubeflow_trainer.dataclass_compat`).

One deliberate difference: ``CustomTrainer.pip_index_urls`` defaults to ``None``, meaning "use the pip
configuration of the machine that installs the packages" (its index, extra indexes, find-links,
constraints). Upstream hard-codes ``https://pypi.org/simple``, which silently overrides a private index.
``DEFAULT_PIP_INDEX_URLS`` (comma-separated) still sets a default as upstream does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from kubeflow_trainer import shipping
from kubeflow_trainer.dataclass_compat import DataclassCompat
from kubeflow_trainer.resources import parse_resources
from kubeflow_trainer.workspace import Workspace

# Job statuses (upstream strings).
CREATED = "Created"
RUNNING = "Running"
COMPLETE = "Complete"
FAILED = "Failed"
UNKNOWN = "Unknown"
SUSPENDED = "Suspended"
"""Ours (upstream's SDK has no such status; the Trainer API's TrainJob condition has this name): a job that
waits to be admitted, suspended on Kubernetes (``spec.suspend``, Kueue) or queued by a local or container
backend's admission limit. It goes on to Running by itself."""
STATUSES = frozenset({CREATED, SUSPENDED, RUNNING, COMPLETE, FAILED})
"""The statuses ``wait_for_job_status`` accepts."""

WORKSPACE_PATH = "/workspace"
DATASET_PATH = f"{WORKSPACE_PATH}/dataset"
MODEL_PATH = f"{WORKSPACE_PATH}/model"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class JobStatus(str, Enum):
    """The status names of a TrainJob and of its steps. Members compare equal to the upstream strings."""

    CREATED = CREATED
    SUSPENDED = SUSPENDED
    RUNNING = RUNNING
    COMPLETE = COMPLETE
    FAILED = FAILED
    UNKNOWN = UNKNOWN

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        """As upstream's plain strings print: ``'Complete'``, so printed steps and lists read the same."""
        return repr(self.value)


class _Model(DataclassCompat):
    """Input types: built by users. A refusal names the field and what is wrong without echoing the input
    (``hide_input_in_errors``): a missing or bad field would otherwise print every value given, credentials
    (``access_token``, ``secret_access_key``, secret ``env``) included, into notebooks and logs."""

    model_config = ConfigDict(extra="forbid", defer_build=True, validate_assignment=True, hide_input_in_errors=True)


class _Loose(DataclassCompat):
    """Output types: built by backends, not by users."""

    model_config = ConfigDict(defer_build=True, arbitrary_types_allowed=True)


def _default_index_urls() -> list[str] | None:
    raw = os.environ.get("DEFAULT_PIP_INDEX_URLS", "").strip()
    return [u.strip() for u in raw.split(",") if u.strip()] or None


def _check_env(env: dict[str, str] | None) -> dict[str, str] | None:
    if env is None:
        return None
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise ValueError(f"env: {key!r} is not a valid environment variable name")
        if not isinstance(value, str):
            raise ValueError(f"env[{key!r}]: values must be strings; got {type(value).__name__} {value!r}")
    return env


def _check_resources(value: dict[str, Any] | None) -> dict[str, Any] | None:
    parse_resources(value)
    return value


class CustomTrainer(_Model):
    """Run a Python function as the training code: ``func(**func_args)`` on every process of every node.

    Args:
        func: The training function, defined with ``def``; imports it needs go inside it.
        func_args: Keyword arguments for ``func``; values must be JSON-serialisable.
        image: Container image for container and Kubernetes backends (else the runtime's image).
        packages_to_install: Extra pip requirements installed before the function runs.
        pip_index_urls: Package indexes: the first is the index URL, the rest extra indexes. ``None`` uses
            the installing machine's pip configuration.
        num_nodes: Number of nodes (default: the runtime's).
        resources_per_node: e.g. ``{"gpu": 4, "cpu": 5, "memory": "10G"}`` or ``{"mig-1g.5gb": 1}``.
        env: Environment variables set on every node, on top of the backend's environment.
        workspace: Your project directory (a path or a :class:`~kubeflow_trainer.workspace.Workspace` with
            include/exclude patterns), shipped into the job: it is the working directory of every node and
            importable (``import helpers``, ``open("configs/base.yaml")``); ``.gitignore`` is respected. A
            ``func`` defined in one of its modules runs by reference (imported from its module). Default
            None: only the function ships, as upstream.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True, arbitrary_types_allowed=True)
    __positional_fields__: ClassVar[tuple[str, ...] | None] = (
        "func", "func_args", "image", "packages_to_install", "pip_index_urls", "num_nodes", "resources_per_node", "env"
    )  # fmt: skip
    """Upstream's fields, in upstream's order; ``workspace`` (ours) is keyword-only."""

    func: Callable[..., Any]
    func_args: dict[str, Any] | None = Field(default=None, validate_default=True)
    image: str | None = None
    packages_to_install: list[str] | None = None
    pip_index_urls: list[str] | None = Field(default_factory=_default_index_urls)
    num_nodes: int | None = Field(default=None, ge=1)
    resources_per_node: dict[str, Any] | None = None
    env: dict[str, str] | None = None
    workspace: Workspace | None = None

    @field_validator("workspace", mode="before")
    @classmethod
    def _workspace(cls, value: Any) -> Any:
        if isinstance(value, (str, os.PathLike)):
            return Workspace(path=os.fspath(value))
        return value

    @field_validator("func", mode="plain")
    @classmethod
    def _func(cls, value: Any) -> Callable[..., Any]:
        return shipping.validate_function(value)

    @field_validator("resources_per_node")
    @classmethod
    def _resources(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_resources(value)

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_env(value)

    @field_validator("packages_to_install", "pip_index_urls")
    @classmethod
    def _non_blank(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not item.strip() for item in value):
            raise ValueError("entries must be non-empty strings")
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError(f"image must be an image reference without spaces; got {value!r}")
        return value

    @field_validator("func_args")
    @classmethod
    def _func_args(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        return shipping.validate_func_args(info.data.get("func"), value)


class CustomTrainerContainer(_Model):
    """Run a container image as the training code (its entrypoint, or ``command``/``args``).

    ``command`` and ``args`` are ours (upstream runs the image's entrypoint); they come after upstream's
    fields so positional construction binds as upstream's.
    """

    image: str
    num_nodes: int | None = Field(default=None, ge=1)
    resources_per_node: dict[str, Any] | None = None
    env: dict[str, str] | None = None
    command: list[str] | None = None
    args: list[str] | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if not value.strip() or any(c.isspace() for c in value):
            raise ValueError(f"image must be an image reference without spaces; got {value!r}")
        return value

    @field_validator("resources_per_node")
    @classmethod
    def _resources(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_resources(value)

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_env(value)


class Loss(str, Enum):
    """Loss functions of the TorchTune builtin trainer."""

    CEWithChunkedOutputLoss = "torchtune.modules.loss.CEWithChunkedOutputLoss"


class DataType(str, Enum):
    """Training dtypes of the TorchTune builtin trainer."""

    BF16 = "bf16"
    FP32 = "fp32"


class DataFormat(str, Enum):
    """Dataset file formats."""

    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"
    ARROW = "arrow"
    TEXT = "text"
    XML = "xml"


class TorchTuneInstructDataset(_Model):
    """``torchtune.datasets.instruct_dataset`` settings."""

    source: DataFormat | None = None
    split: str | None = None
    train_on_input: bool | None = None
    new_system_prompt: str | None = None
    column_map: dict[str, str] | None = None


class LoraConfig(_Model):
    """LoRA fine-tuning settings of the TorchTune builtin trainer."""

    apply_lora_to_mlp: bool | None = None
    apply_lora_to_output: bool | None = None
    lora_attn_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj", "output_proj"])
    lora_rank: int | None = Field(default=None, ge=1)
    lora_alpha: int | None = None
    lora_dropout: float | None = Field(default=None, ge=0, le=1)
    quantize_base: bool | None = None
    use_dora: bool | None = None


class TorchTuneConfig(_Model):
    """Configuration of the TorchTune builtin trainer."""

    dtype: DataType | None = None
    batch_size: int | None = Field(default=None, ge=1)
    epochs: int | None = Field(default=None, ge=1)
    loss: Loss | None = None
    num_nodes: int | None = Field(default=None, ge=1)
    peft_config: LoraConfig | None = None
    dataset_preprocess_config: TorchTuneInstructDataset | None = None
    resources_per_node: dict[str, Any] | None = None

    @field_validator("resources_per_node")
    @classmethod
    def _resources(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_resources(value)


class BuiltinTrainer(_Model):
    """A trainer whose code ships with the runtime (TorchTune fine-tuning)."""

    config: TorchTuneConfig


TORCH_TUNE = "torchtune"
"""The framework name of the TorchTune builtin trainer (upstream's ``types.TORCH_TUNE``)."""


class RuntimeKind(str, Enum):
    """Where a runtime definition lives."""

    CLUSTER_TRAINING_RUNTIME = "ClusterTrainingRuntime"
    TRAINING_RUNTIME = "TrainingRuntime"


class TrainerType(str, Enum):
    """Which trainer types a runtime serves."""

    CUSTOM_TRAINER = "CustomTrainer"
    BUILTIN_TRAINER = "BuiltinTrainer"


class RuntimeTrainer(_Loose):
    """The trainer part of a runtime: framework, image, default node count, device and entry command.

    ``packages`` are the pip requirements a backend without images (the local backend) installs for it.
    """

    trainer_type: TrainerType
    framework: str
    image: str = ""
    num_nodes: int = 1
    device: str = UNKNOWN
    device_count: str = UNKNOWN
    command: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()

    def set_command(self, command: tuple[str, ...]) -> None:
        """Upstream-compatible setter."""
        self.command = tuple(command)


class Runtime(_Loose):
    """A training runtime (ClusterTrainingRuntime or TrainingRuntime)."""

    name: str
    trainer: RuntimeTrainer
    kind: RuntimeKind = RuntimeKind.CLUSTER_TRAINING_RUNTIME
    pretrained_model: str | None = None
    spec: dict[str, Any] | None = Field(default=None, repr=False)
    """The runtime object in ClusterTrainingRuntime shape, when known."""

    def __repr__(self) -> str:
        """One short line: name, framework, trainer type, nodes, device, image (``spec`` is left out)."""
        from kubeflow_trainer.display import runtime_repr

        return runtime_repr(self)

    __str__ = __repr__

    def _repr_html_(self) -> str:
        """Jupyter: a one-row table."""
        from kubeflow_trainer.display import html_table, runtime_row

        return html_table([runtime_row(self)], caption=f"Runtime {self.name}")


class Step(_Loose):
    """One step of a job: ``dataset-initializer``, ``model-initializer`` or ``node-<rank>``."""

    name: str
    status: JobStatus | None = None
    """A :class:`JobStatus` (compares equal to upstream's strings: ``step.status == "Running"`` works)."""
    pod_name: str = ""
    device: str = UNKNOWN
    device_count: str = UNKNOWN
    exit_code: int | None = None
    message: str | None = None
    restarts: int = 0
    """How often the step's processes were restarted after a failure (``MaxRestarts``; ours, not upstream's)."""


class TrainerStatus(_Loose):
    """What the training code last reported with :func:`~kubeflow_trainer.update_trainjob_status`.

    The fields of the Trainer API's ``TrainJob.status.trainerStatus``; metric values are strings, as there.
    """

    progress_percentage: int | None = None
    estimated_remaining_seconds: int | None = None
    metrics: dict[str, str] = Field(default_factory=dict)
    last_updated_time: datetime | None = None


class Preparation(_Loose):
    """What a job is doing before its nodes run, with numbers where the backend knows them (ours).

    ``phase`` says what happens (``installing packages``, ``pulling image``, ``initializing``, ``starting
    nodes``); ``done`` of ``total`` ``unit`` (``packages``, ``bytes``, ``layers``, ``files``, ``nodes``) counts
    it; ``detail`` is a short free text (the package being downloaded). ``TrainJob.preparation`` holds it until
    the nodes run; progress displays (:mod:`kubeflow_trainer.progress`) show it.
    """

    phase: str
    done: int | None = None
    total: int | None = None
    unit: str = ""
    detail: str = ""

    def describe(self) -> str:
        """One line: ``installing packages: 3/12 packages (torch)``."""
        unit, scale = self.unit, 0.0
        if unit == "bytes":  # 12.6/41.9 MB: decimal units, as engines and installers print sizes
            largest = max(self.done or 0, self.total or 0)
            unit, scale = next(
                (u, f) for u, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3), ("B", 1.0)) if largest >= f or f == 1.0
            )

        def number(n: int) -> str:
            return f"{n / scale:.1f}" if scale > 1 else str(n)

        count = ""
        if self.done is not None and self.total:
            count = f": {number(self.done)}/{number(self.total)} {unit}".rstrip()
        elif self.total:
            count = f": {number(self.total)} {unit}".rstrip()
        elif self.done is not None and self.unit in ("bytes", "layers"):  # counted, no total known (yet)
            count = f": {number(self.done)} {unit}"
        return f"{self.phase}{count}" + (f" ({self.detail})" if self.detail else "")


class TrainJob(_Loose):
    """A job as seen by the backend.

    ``trainer_status`` (ours; upstream's 0.5.0 TrainJob has no such field) holds the last progress and
    metrics the training function reported with ``update_trainjob_status``, on every backend.
    """

    name: str
    runtime: Runtime | None = None
    steps: list[Step] = Field(default_factory=list)
    num_nodes: int = 1
    creation_timestamp: datetime
    status: JobStatus = JobStatus.UNKNOWN
    """A :class:`JobStatus` (compares equal to upstream's strings: ``job.status == "Complete"`` works)."""
    message: str | None = None
    backend: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    trainer_status: TrainerStatus | None = None
    preparation: Preparation | None = None
    """While the job prepares (environment, image, initializers, nodes starting): what it does, with numbers."""

    def __repr__(self) -> str:
        """One short line: name, status, runtime, nodes, steps by status, backend, creation time, message."""
        from kubeflow_trainer.display import job_repr

        return job_repr(self)

    __str__ = __repr__

    def _repr_html_(self) -> str:
        """Jupyter: the job's summary, its steps and what the training code reported, as compact tables."""
        from kubeflow_trainer.display import job_html

        return job_html(self)


class Event(_Loose):
    """A lifecycle event of a job or of one of its steps."""

    involved_object_kind: str
    involved_object_name: str
    message: str
    reason: str
    event_time: datetime


_CACHE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class BaseInitializer(_Model):
    """Base class of dataset and model initializers.

    Args:
        storage_uri: Where the data comes from; the scheme depends on the initializer type.
        cache: Name of a cache to keep this download in (lowercase letters, digits, ``.``, ``_``, ``-``).
            A later job with the same source and the same cache name copies it from the cache instead
            of downloading it again, and its step log says so. Local backend: a directory under the
            backend's ``data_cache_dir``; container backends: a named volume ``kft-cache-<name>`` that
            ``delete_job`` keeps. ``None`` (default): always download.
    """

    storage_uri: str
    cache: str | None = None

    @field_validator("storage_uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("storage_uri must not be empty")
        return value

    @field_validator("cache")
    @classmethod
    def _cache(cls, value: str | None) -> str | None:
        if value is not None and not _CACHE_NAME.match(value):
            raise ValueError(
                f"cache must be 1-63 characters of lowercase letters, digits, '.', '_' or '-', starting with a "
                f"letter or digit; got {value!r}"
            )
        return value


def _require_scheme(value: str, *schemes: str) -> str:
    if not value.startswith(schemes):
        raise ValueError(f"storage_uri must start with {' or '.join(schemes)}; got {value!r}")
    return value


def _check_hf_uri(value: str) -> str:
    _require_scheme(value, "hf://")
    repo = value[len("hf://") :].strip("/")
    if not repo or any(not part for part in repo.split("/")):
        raise ValueError(f"storage_uri must be hf://<org>/<repo>[/<path in the repo>]; got {value!r}")
    return value


def _check_s3_uri(value: str) -> str:
    _require_scheme(value, "s3://")
    if not value[len("s3://") :].split("/", 1)[0]:
        raise ValueError(f"storage_uri must be s3://<bucket>[/<prefix>]; got {value!r}")
    return value


def _check_url(value: str) -> str:
    if value.startswith(("http://", "https://")):
        if not value.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError(f"storage_uri has no host: {value!r}")
        return value
    path = value[len("file://") :] if value.startswith("file://") else value
    if not os.path.isabs(path):
        raise ValueError(
            f"storage_uri must be an http(s):// URL, a file:// URL or an absolute local path; got {value!r}"
        )
    return value


class _HuggingFace(BaseInitializer):
    revision: str | None = None
    allow_patterns: list[str] | None = None
    endpoint: str | None = None
    access_token: str | None = Field(default=None, repr=False)

    @field_validator("storage_uri")
    @classmethod
    def _scheme(cls, value: str) -> str:
        return _check_hf_uri(value)


class HuggingFaceDatasetInitializer(_HuggingFace):
    """Download a dataset repository from the Hugging Face Hub (``hf://<org>/<repo>``) into ``/workspace/dataset``.

    Args:
        revision: Branch, tag or commit (default: the repository's default branch).
        allow_patterns: Only files matching one of these glob patterns.
        ignore_patterns: Skip files matching one of these glob patterns.
        endpoint: The Hub's address. Default: ``HF_ENDPOINT`` of the submitting process, else the Hub.
        access_token: Token for private or gated repositories (sent to the step as a secret env var).
    """

    __positional_fields__: ClassVar[tuple[str, ...] | None] = ("storage_uri", "ignore_patterns", "access_token")

    ignore_patterns: list[str] | None = None


class S3DatasetInitializer(BaseInitializer):
    """Download every object under an S3 prefix (``s3://bucket/prefix``) into ``/workspace/dataset``.

    Args:
        endpoint: URL of an S3-compatible server (MinIO, Ceph, ...). Default: AWS.
        access_key_id / secret_access_key: Credentials. Default: the step's AWS credential chain.
        region: Region name. role_arn: a role to assume (STS) before downloading.
        ignore_patterns: Skip objects whose key (relative to the prefix) matches one of these globs.
    """

    __positional_fields__: ClassVar[tuple[str, ...] | None] = (
        "storage_uri",
        "ignore_patterns",
        "endpoint",
        "access_key_id",
        "secret_access_key",
        "region",
        "role_arn",
    )

    ignore_patterns: list[str] | None = None
    endpoint: str | None = None
    access_key_id: str | None = Field(default=None, repr=False)
    secret_access_key: str | None = Field(default=None, repr=False)
    region: str | None = None
    role_arn: str | None = None

    @field_validator("storage_uri")
    @classmethod
    def _scheme(cls, value: str) -> str:
        return _check_s3_uri(value)


class _Url(BaseInitializer):
    sha256: str | None = None
    unpack: bool = False

    @field_validator("storage_uri")
    @classmethod
    def _scheme(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError(f"sha256 must be 64 hex digits; got {value!r}")
        return value.lower() if value else value


class UrlDatasetInitializer(_Url):
    """Fetch a dataset from a plain URL or path into ``/workspace/dataset``.

    ``http(s)://`` URLs download one file (kept under its name, or unpacked with ``unpack=True`` for
    .tar/.tar.gz/.zip archives); ``file://`` URLs and absolute paths copy a local file or directory (on
    container backends it is mounted read-only into the step). Not on Kubernetes.

    Args:
        sha256: Expected SHA-256 of a downloaded file; a mismatch fails the step.
        unpack: Unpack a downloaded archive into the target directory.
    """


class UrlModelInitializer(_Url):
    """Fetch a model from a plain URL or path into ``/workspace/model``. See :class:`UrlDatasetInitializer`."""


class DataCacheInitializer(BaseInitializer):
    """Serve a dataset from Kubeflow's distributed data cache (``cache://<schema>/<table>``). Kubernetes only."""

    __positional_fields__: ClassVar[tuple[str, ...] | None] = (
        "storage_uri",
        "metadata_loc",
        "num_data_nodes",
        "head_cpu",
        "head_mem",
        "worker_cpu",
        "worker_mem",
        "iam_role",
    )

    metadata_loc: str
    num_data_nodes: int = Field(gt=1)
    head_cpu: str | None = None
    head_mem: str | None = None
    worker_cpu: str | None = None
    worker_mem: str | None = None
    iam_role: str | None = None

    @field_validator("storage_uri")
    @classmethod
    def _scheme(cls, value: str) -> str:
        return _require_scheme(value, "cache://")


_MODEL_IGNORE = ["*.msgpack", "*.h5", "*.bin", "*.pt", "*.pth"]


class HuggingFaceModelInitializer(_HuggingFace):
    """Download a model repository from the Hugging Face Hub (``hf://<org>/<repo>``) into ``/workspace/model``.

    Same arguments as :class:`HuggingFaceDatasetInitializer`; ``ignore_patterns`` defaults to upstream's
    list of non-safetensors weight formats.
    """

    __positional_fields__: ClassVar[tuple[str, ...] | None] = ("storage_uri", "ignore_patterns", "access_token")

    ignore_patterns: list[str] | None = Field(default_factory=lambda: list(_MODEL_IGNORE))


class S3ModelInitializer(BaseInitializer):
    """Download a model from S3-compatible storage (``s3://bucket/prefix``) into ``/workspace/model``.

    Same arguments as :class:`S3DatasetInitializer`; ``ignore_patterns`` defaults as for Hugging Face models.
    """

    __positional_fields__: ClassVar[tuple[str, ...] | None] = (
        "storage_uri",
        "ignore_patterns",
        "endpoint",
        "access_key_id",
        "secret_access_key",
        "region",
        "role_arn",
    )

    ignore_patterns: list[str] | None = Field(default_factory=lambda: list(_MODEL_IGNORE))
    endpoint: str | None = None
    access_key_id: str | None = Field(default=None, repr=False)
    secret_access_key: str | None = Field(default=None, repr=False)
    region: str | None = None
    role_arn: str | None = None

    @field_validator("storage_uri")
    @classmethod
    def _scheme(cls, value: str) -> str:
        return _check_s3_uri(value)


DatasetInitializer = HuggingFaceDatasetInitializer | S3DatasetInitializer | UrlDatasetInitializer | DataCacheInitializer
ModelInitializer = HuggingFaceModelInitializer | S3ModelInitializer | UrlModelInitializer


class Initializer(_Model):
    """Dataset and model initializers: steps that fill ``/workspace/dataset`` and ``/workspace/model`` before
    the trainer nodes start. Both run in parallel; the nodes start only when both succeeded. The training
    function finds the directories in ``KUBEFLOW_TRAINER_DATASET_DIR`` / ``KUBEFLOW_TRAINER_MODEL_DIR``."""

    dataset: DatasetInitializer | None = None
    model: ModelInitializer | None = None


Trainer = CustomTrainer | CustomTrainerContainer | BuiltinTrainer
"""Any trainer type accepted by ``TrainerClient.train``."""


class TrainJobTemplate(_Model):
    """A reusable ``train()`` request: ``client.train(**template)`` submits it (upstream's ``TrainJobTemplate``).

    Args:
        trainer: The trainer (upstream takes a ``CustomTrainer``; any trainer type is accepted here).
        runtime: A runtime name or a ``Runtime`` from ``get_runtime()`` (default: ``torch-distributed``).
        initializer: Dataset and model initializers.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True, arbitrary_types_allowed=True)

    trainer: CustomTrainer | CustomTrainerContainer | BuiltinTrainer
    runtime: str | Runtime | None = None
    initializer: Initializer | None = None

    def keys(self) -> list[str]:
        """The ``train()`` keyword names, so ``**template`` unpacks it."""
        return ["trainer", "runtime", "initializer"]

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)
