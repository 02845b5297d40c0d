"""Job options for ``TrainerClient.train(options=[...])`` (upstream names).

Each option is a validated pydantic model (unknown keywords are refused) that edits the backend-neutral
job plan. An option that needs a backend capability declares it; the client refuses the request before
anything starts when the selected backend lacks it, instead of dropping the option silently.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubeflow_trainer.backend import Capability

if TYPE_CHECKING:
    from kubeflow_trainer.plan import JobPlan

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


class JobOption(BaseModel):
    """Base class of options. Subclasses implement :meth:`apply`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    requires: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Accept fields positionally too, as upstream's dataclass options do (``Name("my-job")``)."""
        fields = list(type(self).model_fields)
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes at most {len(fields)} positional argument(s)")
        for field_name, value in zip(fields, args, strict=False):
            if field_name in kwargs:
                raise TypeError(f"{type(self).__name__} got {field_name!r} twice")
            kwargs[field_name] = value
        super().__init__(**kwargs)

    def apply(self, plan: JobPlan) -> None:  # pragma: no cover - abstract
        """Edit the job plan."""
        raise NotImplementedError


class Name(JobOption):
    """The job's name (a DNS-1123 label). Default: a random 12-character name."""

    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_job_name(value)

    def apply(self, plan: JobPlan) -> None:
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

    def apply(self, plan: JobPlan) -> None:
        plan.labels.update(self.labels)


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

    def apply(self, plan: JobPlan) -> None:
        plan.annotations.update(self.annotations)


class TrainerCommand(JobOption):
    """Override the trainer container's command (only with ``CustomTrainerContainer``)."""

    command: list[str] = Field(min_length=1)

    def apply(self, plan: JobPlan) -> None:
        plan.require_container_trainer("TrainerCommand")
        plan.container_command = list(self.command)


class TrainerArgs(JobOption):
    """Override the trainer container's arguments (only with ``CustomTrainerContainer``)."""

    args: list[str]

    def apply(self, plan: JobPlan) -> None:
        plan.require_container_trainer("TrainerArgs")
        plan.container_args = list(self.args)


class ActiveDeadlineSeconds(JobOption):
    """Fail the job when it runs longer than this many seconds."""

    seconds: int = Field(ge=1)
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.ACTIVE_DEADLINE})

    def apply(self, plan: JobPlan) -> None:
        plan.active_deadline_seconds = self.seconds


class RuntimePatch(JobOption):
    """A strategic patch of the runtime's JobSet template (Kubernetes), in TrainJob ``runtimePatches`` shape.

    ``patch`` is the ``trainingRuntimeSpec`` object, e.g.
    ``{"template": {"spec": {"replicatedJobs": [{"name": "node", ...}]}}}``.
    """

    patch: dict[str, Any]
    manager: str = "trainer.kubeflow.org/kubeflow-sdk"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.RUNTIME_PATCH})

    def apply(self, plan: JobPlan) -> None:
        plan.runtime_patches.append({"manager": self.manager, "trainingRuntimeSpec": self.patch})
