"""Job options for ``TrainerClient.train(options=[...])`` (upstream names).

Each option is a validated pydantic model (unknown keywords are refused) that edits the backend-neutral
job plan. An option that needs a backend capability declares it; the client refuses the request before
anything starts when the selected backend lacks it, instead of dropping the option silently.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ConfigDict, Field, field_validator, model_validator

from kubeflow_trainer.capabilities import Capability
from kubeflow_trainer.dataclass_compat import DataclassCompat

if TYPE_CHECKING:
    from kubeflow_trainer.plan import PlanDraft

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
MAX_JOB_NAME = 63


def validate_job_name(name: str) -> str:
    """A job name must be a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters."""
    if not isinstance(name, str) or not name:
        raise ValueError("job name must be a non-empty string")
    if len(name) > MAX_JOB_NAME or not _DNS1123_LABEL.match(name):
        raise ValueError(
            f"job name {name!r} is not a valid DNS-1123 label: use at most {MAX_JOB_NAME} lower-case letters, "
            "digits and '-', starting and ending with a letter or digit (e.g. 'mnist-run-1')"
        )
    return name


def validate_label_key(key: str) -> str:
    """Kubernetes label/annotation key syntax: ``[prefix/]name``."""
    prefix, _, name = key.rpartition("/")
    if (prefix and (len(prefix) > 253 or not _LABEL_PREFIX.match(prefix))) or (
        not name or len(name) > 63 or not _LABEL_NAME.match(name)
    ):
        raise ValueError(f"{key!r} is not a valid key: use [dns-prefix/]name, name at most 63 characters")
    return key


class JobOption(DataclassCompat):
    """Base class of options. Subclasses implement :meth:`apply`.

    Fields are accepted positionally too, as upstream's dataclass options take them (``Name("my-job")``),
    and ``inspect.signature`` shows upstream's parameters (:mod:`kubeflow_trainer.dataclass_compat`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    requires: ClassVar[frozenset[Capability]] = frozenset()

    def apply(self, plan: PlanDraft) -> None:  # pragma: no cover - abstract
        """Edit the job plan."""
        raise NotImplementedError

    @classmethod
    def example(cls) -> JobOption | None:
        """A valid instance of this option. The conformance kit uses it to check that a backend which does
        not declare every capability in :attr:`requires` refuses the option before anything starts, so an
        option that requires a capability should return one. ``None``: the kit cannot build one."""
        return None


class Name(JobOption):
    """The job's name (a DNS-1123 label). Default: a random 12-character name."""

    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_job_name(value)

    def apply(self, plan: PlanDraft) -> None:
        plan.name = self.name


class Labels(JobOption):
    """Labels put on the job and on everything the backend creates for it."""

    labels: dict[str, str]
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.LABELS})

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            validate_label_key(key)
            if not isinstance(val, str) or len(val) > 63 or not _LABEL_VALUE.match(val):
                raise ValueError(f"label {key!r}: value {val!r} must be at most 63 characters of [A-Za-z0-9_.-]")
        return value

    def apply(self, plan: PlanDraft) -> None:
        plan.labels.update(self.labels)

    @classmethod
    def example(cls) -> Labels:
        return cls(labels={"team": "kft"})


class Annotations(JobOption):
    """Annotations put on the job."""

    annotations: dict[str, str]
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.ANNOTATIONS})

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            validate_label_key(key)
            if not isinstance(val, str):
                raise ValueError(f"annotation {key!r}: value must be a string")
        return value

    def apply(self, plan: PlanDraft) -> None:
        plan.annotations.update(self.annotations)

    @classmethod
    def example(cls) -> Annotations:
        return cls(annotations={"kft/note": "kit"})


class TrainerCommand(JobOption):
    """Override the trainer container's command (only with ``CustomTrainerContainer``)."""

    command: list[str] = Field(min_length=1)

    def apply(self, plan: PlanDraft) -> None:
        plan.require_container_trainer("TrainerCommand")
        plan.container_command = list(self.command)


class TrainerArgs(JobOption):
    """Override the trainer container's arguments (only with ``CustomTrainerContainer``)."""

    args: list[str]

    def apply(self, plan: PlanDraft) -> None:
        plan.require_container_trainer("TrainerArgs")
        plan.container_args = list(self.args)


class ActiveDeadlineSeconds(JobOption):
    """Fail the job when it runs longer than this many seconds."""

    seconds: int = Field(ge=1)
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.ACTIVE_DEADLINE})

    def apply(self, plan: PlanDraft) -> None:
        plan.active_deadline_seconds = self.seconds

    @classmethod
    def example(cls) -> ActiveDeadlineSeconds:
        return cls(seconds=60)


class DataDirs(JobOption):
    """Directories of this machine the job reads, without copying them: ``DataDirs({"imagenet": "~/data/in1k"})``.

    Each is named in every node by ``$KUBEFLOW_TRAINER_DATA_DIR_<NAME>`` (``KUBEFLOW_TRAINER_DATA_DIR_IMAGENET``).
    Docker and Podman bind-mount it read-only at ``/kft-data/<name>``; the local backend gives the job the
    directory's own path (its processes run as you: read-only is not enforced there). Kubernetes pods cannot
    see this machine's disk: the option is refused there (put the data on a PVC). Names are lower-case
    letters, digits and ``_``; each path must be an existing directory (checked here, before anything starts).
    """

    dirs: dict[str, str | Path]
    """Name -> directory (``str`` or ``pathlib.Path``; ``~`` expanded, made absolute: a ``Path`` once validated)."""
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA_DIRS})

    @field_validator("dirs")
    @classmethod
    def _dirs(cls, value: dict[str, str | Path]) -> dict[str, str | Path]:
        from kubeflow_trainer.outputs import validate_data_dir_name

        if not value:
            raise ValueError("DataDirs needs at least one entry: DataDirs({'name': '/path/to/dir'})")
        out: dict[str, str | Path] = {}
        for name, path in value.items():
            validate_data_dir_name(name)
            resolved = Path(os.path.abspath(os.path.expanduser(path)))
            if not resolved.exists():
                raise ValueError(f"data directory {name!r}: {str(path)!r} does not exist; give an existing directory")
            if not resolved.is_dir():
                raise ValueError(f"data directory {name!r}: {str(path)!r} is not a directory; give a directory")
            if not os.access(resolved, os.R_OK | os.X_OK):
                raise ValueError(f"data directory {name!r}: {str(path)!r} is not readable by you; fix its permissions")
            out[name] = resolved
        return out

    def apply(self, plan: PlanDraft) -> None:
        plan.data_dirs.update({name: str(path) for name, path in self.dirs.items()})

    @classmethod
    def example(cls) -> DataDirs:
        return cls(dirs={"kit": os.path.dirname(os.path.abspath(__file__))})  # a directory that always exists


_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/(?P<prefix>.*))?$")


class OutputStorage(JobOption):
    """Keep the job's outputs in S3-compatible storage: ``OutputStorage("s3://bucket/runs")``.

    For backends whose jobs leave nothing behind (Kubernetes). When the function of a node ends (completed or
    failed), the node's local rank 0 uploads ``$KUBEFLOW_TRAINER_OUTPUT_DIR`` to ``<uri>/<job name>/``, and
    ``get_job_outputs`` downloads it from there, from any client, also after ``delete_job`` (the bucket is
    yours: the SDK never deletes from it). The trainer image needs ``boto3``; the pods take credentials from
    the Kubernetes Secret ``secret`` (keys ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``), else from
    their own environment (e.g. a service account role). ``endpoint_url`` names an S3-compatible service
    (MinIO, Ceph...) for the pods and the client; the client uses boto3's usual credentials.
    """

    uri: str
    endpoint_url: str | None = None
    secret: str | None = None
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.OUTPUT_STORAGE})

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not _S3_URI.match(value):
            raise ValueError(
                f"OutputStorage uri {value!r} must be s3://<bucket>[/<prefix>] (a lower-case bucket name of 3-63 "
                "characters), e.g. 's3://my-bucket/trainer-outputs'"
            )
        return value.rstrip("/")

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"endpoint_url {value!r} must be an http(s) URL such as 'http://minio.data:9000'")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None:
            validate_job_name(value.replace(".", "-"))  # a DNS subdomain: at least the label rules
        return value

    def job_uri(self, job: str) -> str:
        """Where job ``job``'s outputs go: ``<uri>/<job>``."""
        return f"{self.uri}/{job}"

    def apply(self, plan: PlanDraft) -> None:
        plan.output_storage = self

    @classmethod
    def example(cls) -> OutputStorage:
        return cls(uri="s3://kit-bucket/outputs")


MAX_RESTARTS = Capability(
    "max-restarts",
    "The MaxRestarts option: torchrun restarts a node's workers after a failure, each restart recorded (an event "
    "with its reason; Step.restarts).",
)


class MaxRestarts(JobOption):
    """Restart a node's training processes up to ``restarts`` times after one of them failed, before the job
    fails (torchrun's ``--max-restarts``: the node's worker group restarts and re-joins the rendezvous; the
    training code resumes from its own checkpoints). Each restart is an event with its reason, and
    ``Step.restarts`` counts them (on Kubernetes once the node's container ended: the pod's termination message
    carries them). ``MaxRestarts(0)``: the first failure fails the job (the default)."""

    restarts: int = Field(ge=0, le=100)
    requires: ClassVar[frozenset[Capability]] = frozenset({MAX_RESTARTS})

    def apply(self, plan: PlanDraft) -> None:
        if plan.trainer_kind != "custom" or plan.framework != "torch":
            from kubeflow_trainer.errors import InvalidRequestError

            raise InvalidRequestError(
                "MaxRestarts applies to a CustomTrainer on the torch runtime (torchrun restarts its workers); "
                "drop the option for this trainer, or run the function with CustomTrainer"
            )
        plan.max_restarts = self.restarts
        from kubeflow_trainer import shipping

        if self.restarts and plan.script in plan.files:
            plan.files[plan.script] = shipping.with_restart_record(plan.files[plan.script])

    @classmethod
    def example(cls) -> MaxRestarts:
        return cls(restarts=1)


class _Patch(DataclassCompat):
    """Base of the runtime patch types: validated, frozen, fields by keyword or position (as upstream's
    dataclasses), rendered with camelCase keys and without unset (``None``) or empty values."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    def to_dict(self) -> dict[str, Any]:
        """The API shape of this patch, as upstream renders it: camelCase keys; ``None``, empty lists and
        empty nested patches left out (other values, empty dicts included, as given)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, list):
                value = [v.to_dict() if isinstance(v, _Patch) else v for v in value]
                if not value:
                    continue
            elif isinstance(value, _Patch):
                value = value.to_dict()
                if not value:
                    continue
            out[_camel(name)] = value
        return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


_VALUE_FROM_KEYS = ("configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef")


class ContainerPatch(_Patch):
    """Patch of one container of the runtime's pods (it must exist in the runtime, e.g. ``node``).

    ``env`` entries are ``{"name": ..., "value": ...}`` or ``{"name": ..., "valueFrom": {...}}``;
    ``volume_mounts`` entries need ``name`` and an absolute ``mountPath``.
    """

    name: str
    env: list[dict[str, Any]] | None = None
    volume_mounts: list[dict[str, Any]] | None = None
    security_context: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Container name must be a non-empty string (the runtime container to patch, e.g. 'node')")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for entry in value or ():
            if not entry.get("name"):
                raise ValueError(f"env entry {entry!r} needs a non-empty 'name'")
            if "value" not in entry and "valueFrom" not in entry:
                raise ValueError(f"env entry {entry['name']!r} needs a 'value' or a 'valueFrom'")
            if "valueFrom" in entry:
                source = entry["valueFrom"]
                if not isinstance(source, dict) or not any(k in source for k in _VALUE_FROM_KEYS):
                    raise ValueError(
                        f"env entry {entry['name']!r}: 'valueFrom' must be a dict with one of "
                        f"{', '.join(_VALUE_FROM_KEYS)}"
                    )
        return value

    @field_validator("volume_mounts")
    @classmethod
    def _mounts(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for mount in value or ():
            if not mount.get("name"):
                raise ValueError(f"volume_mounts entry {mount!r} needs a non-empty 'name'")
            path = mount.get("mountPath")
            if not path or not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(
                    f"volume_mounts entry {mount['name']!r} needs an absolute 'mountPath' (starting with /); "
                    f"got {path!r}"
                )
        return value


class PodSpecPatch(_Patch):
    """Patch of the pod spec fields a manager may set on the runtime's pods."""

    service_account_name: str | None = None
    volumes: list[dict[str, Any]] | None = None
    init_containers: list[ContainerPatch] | None = None
    containers: list[ContainerPatch] | None = None
    image_pull_secrets: list[dict[str, Any]] | None = None
    security_context: dict[str, Any] | None = None
    node_selector: dict[str, str] | None = None
    affinity: dict[str, Any] | None = None
    tolerations: list[dict[str, Any]] | None = None
    scheduling_gates: list[dict[str, Any]] | None = None


class PodTemplatePatch(_Patch):
    """Patch of a Job's pod template: ``metadata`` (labels, annotations) and ``spec``."""

    metadata: dict[str, Any] | None = None
    spec: PodSpecPatch | None = None


class JobSpecPatch(_Patch):
    """Patch of a Job spec: its pod ``template``."""

    template: PodTemplatePatch | None = None


class JobTemplatePatch(_Patch):
    """Patch of a replicated job's Job template: ``metadata`` (labels, annotations) and ``spec``."""

    metadata: dict[str, Any] | None = None
    spec: JobSpecPatch | None = None


class ReplicatedJobPatch(_Patch):
    """Patch of one replicated job of the runtime's JobSet, by ``name`` (e.g. ``node``, ``launcher``)."""

    name: str
    template: JobTemplatePatch | None = None


class JobSetSpecPatch(_Patch):
    """Patch of the JobSet spec: per replicated job patches."""

    replicated_jobs: list[ReplicatedJobPatch] | None = None


class JobSetTemplatePatch(_Patch):
    """Patch of the runtime's JobSet template: ``metadata`` (labels, annotations) and ``spec``."""

    metadata: dict[str, Any] | None = None
    spec: JobSetSpecPatch | None = None


class TrainingRuntimeSpecPatch(_Patch):
    """Patch of a (Cluster)TrainingRuntime spec: its JobSet ``template``."""

    template: JobSetTemplatePatch | None = None


SDK_MANAGER = "trainer.kubeflow.org/kubeflow-sdk"


class RuntimePatch(JobOption):
    """Add a runtime patch to the TrainJob (``spec.runtimePatches``), Kubernetes only.

    As upstream: ``RuntimePatch(training_runtime_spec=TrainingRuntimeSpecPatch(template=JobSetTemplatePatch(
    ...)))``, rendered with camelCase keys. ``manager`` (default ``trainer.kubeflow.org/kubeflow-sdk``) keys
    the patch. Superset of upstream: ``manager=`` may be set, and ``patch=`` takes the
    ``trainingRuntimeSpec`` as a raw dict in API shape instead of the typed patch, e.g.
    ``{"template": {"spec": {"replicatedJobs": [{"name": "node", ...}]}}}`` (fields the Trainer API does
    not know are refused when the TrainJob is rendered).
    """

    __positional_fields__: ClassVar[tuple[str, ...] | None] = ("training_runtime_spec",)
    """Upstream's one field; ``manager`` and ``patch`` (ours) are keyword-only."""

    training_runtime_spec: TrainingRuntimeSpecPatch | None = None
    manager: str = Field(default=SDK_MANAGER, min_length=1)
    patch: dict[str, Any] | None = None
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.RUNTIME_PATCH})

    @model_validator(mode="after")
    def _one_spec(self) -> RuntimePatch:
        if self.training_runtime_spec is not None and self.patch is not None:
            raise ValueError(
                "RuntimePatch takes training_runtime_spec= (typed) or patch= (a raw dict), not both; pass one"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The ``spec.runtimePatches`` entry (``manager`` and ``trainingRuntimeSpec`` when not empty)."""
        out: dict[str, Any] = {}
        if self.training_runtime_spec is not None:
            spec = self.training_runtime_spec.to_dict()
            if spec:
                out["trainingRuntimeSpec"] = spec
        elif self.patch:
            out["trainingRuntimeSpec"] = self.patch
        out["manager"] = self.manager
        return out

    def apply(self, plan: PlanDraft) -> None:
        plan.runtime_patches.append(self.to_dict())

    @classmethod
    def example(cls) -> RuntimePatch:
        return cls(patch={"template": {}})
