"""The LocalProcess backend's native request: everything one job runs, as a typed, serialisable model.

:meth:`~kubeflow_trainer_local.backend.LocalProcessBackend.render` builds a :class:`LocalJobRequest` from the
job plan (that is what ``client.dry_run(...).request`` is); ``submit`` writes exactly that model to the job
directory as ``request.json`` (:meth:`LocalJobRequest.to_file_json`: secrets left out) and starts the
supervisor, which loads it back with :meth:`LocalJobRequest.from_file_json` and runs what it says: the
environments to ensure, the initializer processes, then one process per node. Nothing is rendered twice.

Initializer credentials are :class:`pydantic.SecretStr` fields: redacted in ``repr`` and in every dump,
never in the request file. They reach the supervisor in its environment, as ``KFT_STEP_SECRET__<STEP>__<VAR>``
(:func:`secret_var`), and the supervisor hands each step its own and keeps them from the nodes.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from kubeflow_trainer.types import Runtime
from kubeflow_trainer.workspace import WorkspaceSnapshot
from kubeflow_trainer_local.envcache import VENV, EnvSpec

SECRET_PREFIX = "KFT_STEP_SECRET__"
"""Prefix of the supervisor's environment variables that carry initializer credentials."""
UID_ENV = "KUBEFLOW_TRAINER_JOB_UID"
"""Set in every process of a job (its uid): ``delete_job`` sweeps processes carrying it."""
UNSET_ENV = ("PYTHONHOME",)
"""Variables of the submitting environment no job process inherits (they would break the job's venv)."""


def secret_var(step: str, name: str) -> str:
    """The supervisor's environment variable carrying initializer secret ``name`` of ``step``."""
    return f"{SECRET_PREFIX}{step.replace('-', '_').upper()}__{name}"


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Environment(_Request):
    """A cached virtualenv the job needs: built from ``spec`` unless ready (``EnvironmentCache.ensure``)."""

    key: str
    """The environment's content key (``spec.key()`` when rendered)."""
    cache_dir: str
    """Root of the environment cache; the venv is ``<cache_dir>/<key>/venv``."""
    spec: EnvSpec
    satisfied_by_base: list[str] = Field(default_factory=list)
    """Requirements left out because the base interpreter provides them (``system_site_packages``)."""

    @property
    def venv(self) -> str:
        """The virtualenv directory."""
        return os.path.join(self.cache_dir, self.key, VENV)


class Process(_Request):
    """One process the supervisor starts, in a session of its own.

    Its environment is the supervisor's (which is the submitting client's), without the secret variables
    and :data:`UNSET_ENV`, with ``path_prepend`` in front of ``PATH``, then ``env`` on top.
    """

    step: str
    argv: list[str]
    env: dict[str, str]
    """What the job sets on top of the inherited environment (never a copy of that environment: the
    request is written to disk, the caller's secrets must not be)."""
    cwd: str
    path_prepend: list[str] = Field(default_factory=list)
    unset_env: list[str] = Field(default_factory=lambda: list(UNSET_ENV))


class InitializerProcess(Process):
    """A dataset or model initializer step: the shipped runner in its own environment."""

    source: str
    """A secret-free description of what it fetches, for messages."""
    cache: str | None = None
    """The user's cache name, or None."""
    environment: Environment
    spec_file: str
    """Workspace-relative path of the runner's input (one of :attr:`LocalJobRequest.files`)."""
    timeout_seconds: float | None = None
    """The step fails when it takes longer (the runner enforces it; its input states the same value)."""
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    """Credentials as environment variables of the step; never written to the request file."""


class NodeProcess(Process):
    """Trainer node ``rank``: one ``torchrun`` (or ``python``) in the trainer's environment."""

    rank: int
    cpus: list[int] | None = None
    """CPUs the node is pinned to (``sched_setaffinity``), or None for no pinning."""


class HotStart(_Request):
    """Hot starts: the nodes are forked by a per-environment zygote that has imported ``modules`` (see
    :mod:`kubeflow_trainer_local.launch`); the node argv above is what runs when it cannot serve the job."""

    idle_seconds: float
    """The zygote exits after this long with nothing to do."""
    socket_dir: str | None = None
    """Private directory of the zygotes' sockets (None: ``$XDG_RUNTIME_DIR`` or the temp dir)."""
    modules: list[str] = Field(default_factory=lambda: ["torch", "torch.distributed", "numpy"])
    """What the zygote imports before it forks (those the environment has)."""


class Rendezvous(_Request):
    """The static torchrun rendezvous of the nodes (port 0: not a torch job)."""

    master_addr: str
    master_port: int
    """A port free when rendered; the supervisor takes another (event ``PortReassigned``) if it is taken
    by then."""


class JobLayout(_Request):
    """Where the job lives: ``<state_dir>/jobs/<name>/`` (see :mod:`kubeflow_trainer_local.store`)."""

    state_dir: str
    job_dir: str
    workspace: str
    """The processes' working directory; :attr:`LocalJobRequest.files` are written here."""
    logs_dir: str
    status_dir: str
    """Where initializer steps write their status files."""
    request_file: str
    outputs_dir: str = ""
    """The job's output directory (``$KUBEFLOW_TRAINER_OUTPUT_DIR``), kept until ``delete_job``."""


class LocalWorkspace(_Request):
    """The user's project: copied once into :attr:`cache_entry` (keyed by content digest), hard-linked into
    the job's working directory."""

    cache_entry: str
    snapshot: WorkspaceSnapshot
    """The files that ship (path, size, SHA-256), what was skipped, the digest."""


class LocalJobRequest(_Request):
    """What ``train()`` runs on the local backend, exactly as ``dry_run`` shows it."""

    name: str
    uid: str
    """Random per render: marks every process of the job (:data:`UID_ENV`)."""
    runtime: Runtime
    num_nodes: int
    procs_per_node: int
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    layout: JobLayout
    environment: Environment
    """The trainer's environment."""
    files: dict[str, str]
    """Workspace files (relative path -> content): ``train.py``, the stand-ins, the initializer runner and
    its inputs."""
    workspace: LocalWorkspace | None = None
    """The user's project files (``CustomTrainer(workspace=...)``), placed before the SDK's :attr:`files`."""
    initializers: list[InitializerProcess] = Field(default_factory=list)
    rendezvous: Rendezvous
    nodes: list[NodeProcess]
    active_deadline_seconds: int | None = None
    """The job fails when it runs longer (None: no limit)."""
    stop_grace_seconds: float
    max_running_jobs: int = 0
    """Admission: the job waits (status Suspended) while this many jobs of the state directory run; 0: no limit."""
    """Between SIGTERM and SIGKILL when nodes are stopped."""
    hot_start: HotStart | None = None
    """How warm nodes start without a new interpreter (None: hot starts are off, every node runs its argv)."""
    keep_environment: bool
    """``cleanup_venv=False``: ``prune_environments`` keeps this job's environments while it exists."""

    def steps(self) -> list[str]:
        """The job's step names: initializers first, then the nodes."""
        return [i.step for i in self.initializers] + [n.step for n in self.nodes]

    def environment_keys(self) -> set[str]:
        """Keys of every environment the job uses."""
        return {self.environment.key, *(i.environment.key for i in self.initializers)}

    def secret_environment(self) -> dict[str, str]:
        """The initializer credentials as the supervisor's environment variables (:func:`secret_var`)."""
        return {
            secret_var(init.step, var): value.get_secret_value()
            for init in self.initializers
            for var, value in init.secrets.items()
        }

    def to_file_json(self) -> str:
        """The request file's content: this model without the secrets."""
        exclude: dict[str, Any] = {"initializers": {"__all__": {"secrets"}}}
        return self.model_dump_json(indent=1, exclude=exclude)

    @classmethod
    def from_file_json(cls, text: str | bytes) -> LocalJobRequest:
        """The model a request file holds (secrets empty: they travel in the supervisor's environment)."""
        return cls.model_validate_json(text)
