"""The backend contract: everything a backend plugin implements, in one file.

A backend is published as a distribution that declares an entry point in the group
``kubeflow_trainer.backends`` pointing at a *plugin module*::

    [project.entry-points."kubeflow_trainer.backends"]
    docker = "kubeflow_trainer_docker.plugin"

The plugin module implements the pluggy hooks of :class:`BackendHooks` with :data:`hookimpl`. The only
required one is :meth:`BackendHooks.trainer_register_backends`, which calls ``register(BackendSpec(...))``
once per backend the distribution provides. The plugin module must import fast and must not import a
heavy SDK: the factory does that, when the backend is first used.

A backend itself subclasses :class:`Backend` and translates the backend-neutral
:class:`~kubeflow_trainer.plan.JobPlan` into its native request in :meth:`Backend.render` (used for dry
runs, and by :meth:`Backend.submit`). The client validates requests and refuses ones that need a
:class:`Capability` the backend does not declare, before calling the backend.

Built-in backends (local, docker, podman, kubernetes) register through exactly these entry points.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import pluggy
from pydantic import BaseModel, ConfigDict

from kubeflow_trainer.capabilities import Capability

if TYPE_CHECKING:
    from kubeflow_trainer.doctor import Check
    from kubeflow_trainer.logs import LogEntry
    from kubeflow_trainer.outputs import OutputFile
    from kubeflow_trainer.plan import JobPlan, PlanDraft
    from kubeflow_trainer.types import Event, Runtime, TrainJob

PROJECT = "kubeflow_trainer"
ENTRY_POINT_GROUP = "kubeflow_trainer.backends"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Decorator for hook implementations in plugin modules."""


class BackendConfig(BaseModel):
    """Base class of backend configuration objects (``TrainerClient(backend_config=...)``).

    Unknown fields are refused with a message that names them.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass(frozen=True)
class BackendSpec:
    """What a plugin registers for one backend.

    Args:
        name: The selection name (``TrainerClient(backend=name)``), lower-case, e.g. ``"docker"``.
        config_class: The :class:`BackendConfig` subclass for it; ``TrainerClient(backend_config=cfg)``
            selects the backend whose ``config_class`` ``cfg`` is an instance of.
        factory: Called with a config instance to build the :class:`Backend`; imports heavy SDKs lazily.
        capabilities: What the backend can do.
        description: One line for listings.
        distribution: Filled in by the registry: the distribution that registered it.
    """

    name: str
    config_class: type[BackendConfig]
    factory: Callable[[Any], Backend[Any]]
    capabilities: frozenset[Capability] = frozenset()
    description: str = ""
    distribution: str = ""


class BackendHooks:
    """The pluggy hook specifications (project name ``kubeflow_trainer``)."""

    @hookspec
    def trainer_register_backends(self, register: Callable[[BackendSpec], None]) -> None:
        """Register the backends this plugin provides.

        Called once, the first time the SDK needs the list of backends (never at ``import kubeflow_trainer``).
        Call ``register(BackendSpec(...))`` for each backend. The registry validates each spec; a name
        registered by two distributions becomes an error that names both, raised when that name is used.
        """

    @hookspec
    def trainer_adjust_job_plan(self, plan: PlanDraft) -> None:
        """Adjust the draft of a validated job plan in place, before it is frozen and rendered (all backends,
        dry runs too).

        Use it for cross-cutting policy: add labels, environment variables or volumes, set defaults.
        ``plan.backend`` names the selected backend. The capability check runs after this hook, so a
        requirement added here is refused like one the user asked for.
        """

    @hookspec
    def trainer_doctor_checks(self, backend: str, config: BackendConfig) -> list[Check] | None:
        """Check what backend ``backend`` needs on this machine (``kubeflow-trainer doctor``).

        Return a list of :class:`~kubeflow_trainer.doctor.Check` (engine reachable and its version, images,
        credentials, tools...) for a backend this plugin registers, each failing one with its fix; return
        ``None`` for other backends. Must not raise for a problem it finds: report it as a failing check.
        Core adds the installed / configuration / answers checks itself.
        """


RequestT = TypeVar("RequestT", bound=BaseModel)
"""A backend's native request type (a pydantic model)."""


class Backend(abc.ABC, Generic[RequestT]):
    """Base class of execution backends, generic over their native request model.

    The life of a job, and what each method receives, returns and raises (the conformance kit,
    ``kubeflow_trainer.testing``, checks every point):

    1. The client validates the user's request into a frozen :class:`~kubeflow_trainer.plan.JobPlan` and
       refuses it with ``UnsupportedFeatureError`` if it needs a :class:`Capability` the backend does not
       declare. The backend never sees a request it cannot run, nor the user's raw objects.
    2. :meth:`render` turns the plan into the backend's native request: an instance of
       :attr:`request_model`, built without side effects (no engine or API call that changes anything).
       ``client.dry_run(...)`` returns exactly this object as ``DryRun.request``. Secrets travel in
       ``pydantic.SecretStr`` fields, so the request prints and serialises them redacted.
    3. :meth:`submit` executes exactly that request: it creates what the request describes, nothing
       rendered again. It raises :class:`~kubeflow_trainer.errors.AlreadyExistsError` before creating
       anything when the name is taken, and removes whatever it created when it fails halfway.
    4. :meth:`list_jobs` / :meth:`get_job` report the job with statuses from
       :class:`~kubeflow_trainer.types.JobStatus` (``CREATED``, ``RUNNING``, ``COMPLETE``, ``FAILED``) for the
       job and each step; steps are ``node-<rank>`` (and ``dataset-initializer`` / ``model-initializer``).
       Unknown jobs raise :class:`~kubeflow_trainer.errors.JobNotFoundError`.
    5. :meth:`get_job_logs` yields lines; with ``follow=True`` each line as it is written, until the step ends.
       An unknown step raises :class:`~kubeflow_trainer.errors.StepNotFoundError`.
    6. :meth:`delete_job` stops every process/container/pod and removes everything the backend created.

    Every method raises :class:`~kubeflow_trainer.errors.BackendUnavailableError` when the engine or API
    cannot be reached.

    Backends written before typed requests leave :attr:`request_model` as None; their :meth:`submit` then
    receives the plan and renders it itself. That path is deprecated: declare a request model.
    """

    name: str = ""
    """The backend's selection name, the one its plugin registers (``"local"``). Set it on the class, or in
    ``__init__`` for a class that serves several names (the container backend takes its engine's); the
    registry checks that it matches the registered name."""
    request_model: ClassVar[type[BaseModel] | None] = None
    """The pydantic model :meth:`render` returns and :meth:`submit` executes."""

    status_poll_interval: ClassVar[float] = 1.0
    """How often ``wait_for_job_status`` may call :meth:`get_job` at most (seconds)."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    # Runtimes -----------------------------------------------------------------------------------------
    def list_runtimes(self) -> list[Runtime]:
        """Runtimes this backend can run. Default: the built-in runtime definitions shipped with core."""
        from kubeflow_trainer.runtimes import builtin_runtimes

        return builtin_runtimes()

    def get_runtime(self, name: str) -> Runtime:
        """The runtime called ``name``; :class:`~kubeflow_trainer.errors.RuntimeNotFoundError` otherwise."""
        from kubeflow_trainer.errors import RuntimeNotFoundError

        runtimes = self.list_runtimes()
        for runtime in runtimes:
            if runtime.name == name:
                return runtime
        raise RuntimeNotFoundError(name, [r.name for r in runtimes])

    def get_runtime_packages(self, runtime: Runtime) -> list[str]:
        """The Python packages the runtime provides (``name==version`` lines where known)."""
        return list(runtime.trainer.packages)

    # Jobs ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def render(self, plan: JobPlan) -> RequestT:
        """The native request for ``plan``, an instance of :attr:`request_model`. No side effects: it is what a
        dry run returns and what :meth:`submit` then executes."""

    @abc.abstractmethod
    def submit(self, request: RequestT) -> None:
        """Create the job ``request`` describes, exactly as rendered. Raise AlreadyExistsError before creating
        anything if the name is taken; leave nothing behind when failing halfway."""

    @abc.abstractmethod
    def list_jobs(self, runtime: Runtime | None = None) -> list[TrainJob]:
        """All jobs of this backend, optionally only those of ``runtime``, oldest first."""

    @abc.abstractmethod
    def get_job(self, name: str) -> TrainJob:
        """The job with its steps and status."""

    @abc.abstractmethod
    def get_job_logs(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[str]:
        """Log lines (without trailing newline) of one step; with ``follow`` until the step ends."""

    def get_job_log_entries(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[LogEntry]:
        """Log lines of one step with the time each was written, for merging nodes' logs in time order.

        Optional: the default yields :meth:`get_job_logs`' lines without times (merged logs then keep each
        step's order and interleave followed lines as they arrive). Backends whose engine timestamps lines
        override it."""
        from kubeflow_trainer.logs import LogEntry

        for line in self.get_job_logs(name, step=step, follow=follow):
            yield LogEntry(None, line)

    @abc.abstractmethod
    def get_job_events(self, name: str) -> list[Event]:
        """Lifecycle events of the job and its steps, oldest first."""

    @abc.abstractmethod
    def delete_job(self, name: str) -> None:
        """Stop every process/container/pod of the job and remove what the backend created for it."""

    def open_outputs(self, name: str, path: str = "") -> Iterator[OutputFile]:
        """The files of job ``name``'s output directory (``$KUBEFLOW_TRAINER_OUTPUT_DIR``), or only those under
        ``path`` (a normalised ``/``-separated path relative to it; ``""`` for all), as
        :class:`~kubeflow_trainer.outputs.OutputFile` streams, one at a time: each stream is read to its end
        before the next is asked for, so nothing needs to be held in memory. Regular files only; a ``path``
        that does not exist yields nothing. Raise JobNotFoundError for an unknown job.

        Backends declaring :attr:`Capability.OUTPUTS` implement it (``get_job_outputs`` calls it); the default
        refuses.
        """
        from kubeflow_trainer.errors import UnsupportedFeatureError

        raise UnsupportedFeatureError(
            f"backend '{self.name}' keeps no job outputs to fetch",
            backend=self.name,
            missing=(str(Capability.OUTPUTS),),
        )

    def close(self) -> None:
        """Release client resources (connections). The client calls it on ``close()``."""


@dataclass
class DryRun:
    """What :meth:`TrainerClient.dry_run` returns: the validated plan and the backend's native request
    (the same object ``train`` would submit: an instance of the backend's ``request_model``)."""

    backend: str
    plan: JobPlan
    request: Any
    notes: list[str] = field(default_factory=list)
