"""``TrainerClient``: one API over every backend (upstream method set, plus ``dry_run``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from kubeflow_trainer.backend import Backend, BackendConfig, BackendSpec, DryRun
from kubeflow_trainer.errors import (
    BackendError,
    BackendNotFoundError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    UnsupportedFeatureError,
)
from kubeflow_trainer.plan import JobPlan, build_draft
from kubeflow_trainer.registry import BackendRegistry, default_registry
from kubeflow_trainer.types import (
    COMPLETE,
    FAILED,
    STATUSES,
    BuiltinTrainer,
    CustomTrainer,
    CustomTrainerContainer,
    Event,
    Initializer,
    Runtime,
    TrainJob,
)

BACKEND_ENV = "KUBEFLOW_TRAINER_BACKEND"
DEFAULT_BACKEND = "kubernetes"
DEFAULT_RUNTIME_ENV = "DEFAULT_TRAINING_RUNTIME"


@runtime_checkable
class SelectsBackend(Protocol):
    """A config that no single backend registers but that picks one itself (``ContainerBackendConfig``:
    Docker or Podman, whichever answers)."""

    def select_backend(self, registry: BackendRegistry, prefer: str | None = None) -> tuple[BackendSpec, Backend[Any]]:
        """The chosen backend's spec and the created backend."""


class TrainerClient:
    """Train, inspect and delete jobs on one backend.

    The backend is chosen, in order, by ``backend_config`` (an instance of a backend's config class, as
    upstream), by ``backend`` (a name such as ``"local"``, ``"docker"``, ``"podman"``, ``"kubernetes"``),
    by the ``KUBEFLOW_TRAINER_BACKEND`` environment variable, else ``"kubernetes"``.

    Example::

        client = TrainerClient(backend="local")
        name = client.train(trainer=CustomTrainer(func=train, num_nodes=2))
        client.wait_for_job_status(name)
        for line in client.get_job_logs(name, follow=True):
            print(line)
    """

    def __init__(
        self,
        backend_config: BackendConfig | str | None = None,
        *,
        backend: str | None = None,
        registry: BackendRegistry | None = None,
    ) -> None:
        self._registry = registry or default_registry()
        if isinstance(backend_config, str):
            backend, backend_config = backend_config, None
        spec: BackendSpec
        if backend_config is not None:
            try:
                spec = self._registry.for_config(backend_config)
            except BackendNotFoundError:
                if not isinstance(backend_config, SelectsBackend):
                    raise
                self._spec, self._backend = backend_config.select_backend(self._registry, prefer=backend)
                return
            if backend is not None and backend != spec.name:
                raise InvalidRequestError(
                    f"backend={backend!r} does not match backend_config {type(backend_config).__name__}, "
                    f"which configures backend '{spec.name}'; pass only one of them"
                )
            config = backend_config
        else:
            name = backend or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
            spec = self._registry.get(name)
            config = spec.config_class()
        self._spec = spec
        self._backend = self._registry.create(spec, config)

    # Introspection -----------------------------------------------------------------------------------
    @property
    def backend(self) -> Backend[Any]:
        """The backend instance (upstream-compatible attribute)."""
        return self._backend

    @property
    def backend_name(self) -> str:
        """The selected backend's name."""
        return self._spec.name

    @property
    def capabilities(self) -> frozenset[Any]:
        """What the selected backend declares it can do."""
        return self._spec.capabilities

    def close(self) -> None:
        """Release the backend's client resources."""
        self._backend.close()

    def __enter__(self) -> TrainerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Runtimes ----------------------------------------------------------------------------------------
    def list_runtimes(self) -> list[Runtime]:
        """The runtimes available on this backend."""
        return self._backend.list_runtimes()

    def get_runtime(self, name: str) -> Runtime:
        """The runtime ``name``; raises RuntimeNotFoundError listing the available ones."""
        return self._backend.get_runtime(name)

    def get_runtime_packages(self, runtime: Runtime) -> list[str]:
        """Print the Python packages the runtime provides, one per line, as upstream does; also return them.

        For a runtime with GPUs the device and count are printed first. Upstream returns ``None``; the list
        is ours (a notebook cell shows the printed lines either way).
        """
        if not isinstance(runtime, Runtime):
            raise InvalidRequestError(f"runtime must be a Runtime object; got {type(runtime).__name__}")
        packages = self._backend.get_runtime_packages(runtime)
        if runtime.trainer.device == "gpu":
            print(f"Available GPUs on the training node: {runtime.trainer.device_count}")
        for package in packages:
            print(package)
        return packages

    # Jobs --------------------------------------------------------------------------------------------
    def _plan(
        self,
        runtime: str | Runtime | None,
        initializer: Initializer | None,
        trainer: CustomTrainer | CustomTrainerContainer | BuiltinTrainer | None,
        options: list[Any] | None,
    ) -> JobPlan:
        if runtime is None:
            runtime = os.environ.get(DEFAULT_RUNTIME_ENV) or "torch-distributed"
        if isinstance(runtime, str):
            runtime_obj = self._backend.get_runtime(runtime)
        elif isinstance(runtime, Runtime):
            runtime_obj = runtime.model_copy(deep=True)
        else:
            raise InvalidRequestError(f"runtime must be a name or a Runtime; got {type(runtime).__name__}")
        draft = build_draft(
            backend=self._spec.name,
            runtime=runtime_obj,
            trainer=trainer,
            initializer=initializer,
            options=options,
        )
        self._registry.plugin_manager.hook.trainer_adjust_job_plan(plan=draft)
        plan = draft.freeze()
        missing = sorted(str(c) for c in plan.required_capabilities() - set(self._spec.capabilities))
        if missing:
            others = [
                s.name
                for s in self._registry.specs()
                if s.name != self._spec.name and plan.required_capabilities() <= set(s.capabilities)
            ]
            hint = f" Backends that support it: {', '.join(others)}." if others else ""
            raise UnsupportedFeatureError(
                f"backend '{self._spec.name}' does not support {', '.join(missing)} which this request needs; "
                f"remove it from the request or choose another backend.{hint}",
                backend=self._spec.name,
                missing=tuple(missing),
            )
        return plan

    def _render(self, plan: JobPlan) -> Any:
        """The backend's request for ``plan``, checked against the model the backend declares."""
        request = self._backend.render(plan)
        model = self._backend.request_model
        if model is not None and not isinstance(request, model):
            raise BackendError(
                f"backend '{self._spec.name}' rendered a {type(request).__name__}, not its declared request "
                f"model {model.__name__}: a bug in the backend ({self._spec.distribution or 'unknown distribution'})"
            )
        return request

    def train(
        self,
        runtime: str | Runtime | None = None,
        initializer: Initializer | None = None,
        trainer: CustomTrainer | CustomTrainerContainer | BuiltinTrainer | None = None,
        options: list[Any] | None = None,
    ) -> str:
        """Start a job and return its name.

        ``runtime`` defaults to ``$DEFAULT_TRAINING_RUNTIME`` or ``torch-distributed``. Bad requests raise
        InvalidRequestError (or UnsupportedFeatureError) before anything is created.
        """
        plan = self._plan(runtime, initializer, trainer, options)
        if self._backend.request_model is None:  # a backend from before typed requests renders in submit
            self._backend.submit(plan)
        else:
            self._backend.submit(self._render(plan))  # exactly what dry_run would show
        return plan.name

    def dry_run(
        self,
        runtime: str | Runtime | None = None,
        initializer: Initializer | None = None,
        trainer: CustomTrainer | CustomTrainerContainer | BuiltinTrainer | None = None,
        options: list[Any] | None = None,
    ) -> DryRun:
        """Validate a request like ``train`` and return the backend-native request, creating nothing."""
        plan = self._plan(runtime, initializer, trainer, options)
        return DryRun(backend=self._spec.name, plan=plan, request=self._render(plan))

    def list_jobs(self, runtime: Runtime | None = None) -> list[TrainJob]:
        """All jobs on the backend (of ``runtime`` only, when given)."""
        return self._backend.list_jobs(runtime)

    def get_job(self, name: str) -> TrainJob:
        """The job ``name`` with its steps; raises JobNotFoundError."""
        return self._backend.get_job(name)

    def get_job_logs(self, name: str, step: str = "node-0", follow: bool | None = False) -> Iterator[str]:
        """Log lines of one step (``node-0`` by default). With ``follow=True`` lines are yielded as they are
        written, until the step ends."""
        return self._backend.get_job_logs(name, step=step, follow=bool(follow))

    def get_job_events(self, name: str) -> list[Event]:
        """Lifecycle events of the job, oldest first."""
        return self._backend.get_job_events(name)

    def delete_job(self, name: str) -> None:
        """Stop the job and remove everything the backend created for it."""
        self._backend.delete_job(name)

    def wait_for_job_status(
        self,
        name: str,
        status: set[str] | None = {COMPLETE},  # noqa: B006 - upstream's default; read, never changed
        timeout: float = 600,
        polling_interval: float = 2,
        callbacks: list[Callable[[TrainJob], None]] | None = None,
    ) -> TrainJob:
        """Wait until the job reaches one of ``status`` (default ``{"Complete"}``) and return it.

        Raises JobFailedError as soon as the job is Failed (unless Failed is awaited) and JobTimeoutError
        when ``timeout`` seconds pass. ``callbacks`` run with the job every ``polling_interval`` seconds and
        on every status change.
        """
        wanted = {COMPLETE} if status is None else set(status)  # None: as upstream's default
        unknown = wanted - STATUSES
        if not wanted or unknown:
            raise InvalidRequestError(f"status must be a non-empty subset of {sorted(STATUSES)}; got {sorted(wanted)}")
        if timeout <= 0 or polling_interval <= 0:
            raise InvalidRequestError("timeout and polling_interval must be greater than 0")
        deadline = time.monotonic() + timeout
        check_every = min(polling_interval, self._backend.status_poll_interval)
        last_callback = float("-inf")
        last_status: str | None = None
        while True:
            job = self._backend.get_job(name)
            now = time.monotonic()
            if callbacks and (job.status != last_status or now - last_callback >= polling_interval):
                for callback in callbacks:
                    callback(job)
                last_callback = now
            last_status = job.status
            if job.status in wanted:
                return job
            if job.status == FAILED:
                raise JobFailedError(self._failure_message(job), job=job)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobTimeoutError(
                    f"TrainJob '{name}' did not reach {sorted(wanted)} within {timeout} s "
                    f"(last status: {job.status}). Raise timeout= or check get_job_logs('{name}').",
                    job=job,
                )
            time.sleep(min(check_every, remaining))

    def _failure_message(self, job: TrainJob) -> str:
        parts = [f"TrainJob '{job.name}' failed"]
        if job.message:
            parts.append(f": {job.message}")
        failed = [s for s in job.steps if s.status == FAILED]
        for step in failed[:2]:
            detail = f" exit code {step.exit_code}" if step.exit_code is not None else ""
            parts.append(f"\n  step {step.name} failed{detail}{': ' + step.message if step.message else ''}")
            try:
                tail = list(self._backend.get_job_logs(job.name, step=step.name))[-10:]
            except Exception:  # logs are a courtesy here; the failure is what matters
                tail = []
            if tail:
                parts.append("\n    " + "\n    ".join(tail))
        parts.append(f"\nSee get_job_logs('{job.name}', step=...) for the full logs.")
        return "".join(parts)
