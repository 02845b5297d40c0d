"""``TrainerClient``: one API over every backend (upstream method set, plus ``dry_run``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kubeflow_trainer.backend import Backend, BackendConfig, BackendSpec, DryRun
from kubeflow_trainer.capabilities import Capability
from kubeflow_trainer.errors import (
    BackendError,
    BackendNotFoundError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    StepNotFoundError,
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
        """The runtimes available on this backend (a list that Jupyter shows as a table)."""
        from kubeflow_trainer.display import RuntimeList

        return RuntimeList(self._backend.list_runtimes())

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
        """All jobs on the backend (of ``runtime`` only, when given), in a list that Jupyter shows as a table."""
        from kubeflow_trainer.display import JobList

        return JobList(self._backend.list_jobs(runtime))

    def get_job(self, name: str) -> TrainJob:
        """The job ``name`` with its steps; raises JobNotFoundError."""
        return self._backend.get_job(name)

    def get_job_logs(
        self,
        name: str,
        step: str = "node-0",
        follow: bool | None = False,
        tail_lines: int | None = None,
        progress: bool | None = None,
    ) -> Iterator[str]:
        """Log lines of one step (``node-0`` by default). With ``follow=True`` lines are yielded as they are
        written, until the step ends.

        Args:
            name: The job.
            step: ``node-<rank>``, ``dataset-initializer``, ``model-initializer``, or ``"all"``
                (:data:`~kubeflow_trainer.logs.ALL_NODES`): every node's lines merged in the order they were
                written, each prefixed ``[node-<rank>] ``.
            follow: Keep yielding lines as they are written until the step (every node) ends.
            tail_lines: Only the last ``tail_lines`` lines written so far (then, with ``follow``, new ones).
            progress: With ``follow``, show the job's preparation (packages installing, nodes starting...)
                until its first line (:mod:`kubeflow_trainer.progress`); None: on unless
                ``KUBEFLOW_TRAINER_PROGRESS=0``.

        A line a progress bar rewrote with carriage returns (``tqdm``) is shown at its latest state.
        """
        from kubeflow_trainer import logs

        if tail_lines is not None and (
            isinstance(tail_lines, bool) or not isinstance(tail_lines, int) or tail_lines < 0
        ):
            raise InvalidRequestError(f"tail_lines must be a whole number >= 0 or None; got {tail_lines!r}")
        if step == logs.ALL_NODES:
            merged = self._merged_logs(name, bool(follow), tail_lines)
            return self._with_progress(name, merged, progress) if follow else merged
        stream = self._backend.get_job_logs(name, step=step, follow=bool(follow))  # raises for unknown names now
        lines: Iterator[str] = stream
        if tail_lines is not None:
            if follow:
                lines = logs.follow_from_tail(
                    lambda: self._backend.get_job_logs(name, step=step, follow=False), lambda: stream, tail_lines
                )
            else:
                lines = iter(logs.tail(stream, tail_lines))
        shown = map(logs.latest_state, lines)
        return self._with_progress(name, shown, progress) if follow else shown

    def _show_progress(self, name: str, display: Any, job: TrainJob | None = None) -> None:
        """Update ``display`` with the job and its preparation events."""
        if display.closed:
            return
        job = job or self._backend.get_job(name)
        display.update(job, self._backend.get_job_events(name))

    def _with_progress(self, name: str, lines: Iterator[str], progress: bool | None) -> Iterator[str]:
        """``lines``, with the job's preparation displayed (polled in a thread) until the first one comes."""
        import threading

        from kubeflow_trainer.progress import ProgressDisplay

        display = ProgressDisplay(name, progress=progress)
        if display.closed:
            yield from lines
            return
        stop = threading.Event()

        def poll() -> None:
            while not display.closed:
                try:
                    self._show_progress(name, display)
                except Exception:  # the display is a courtesy; the logs say what went wrong
                    return
                if stop.wait(min(0.5, self._backend.status_poll_interval)):
                    return

        watcher = threading.Thread(target=poll, name="kft-progress", daemon=True)
        watcher.start()
        try:
            for line in lines:
                if watcher.is_alive() or not display.closed:
                    stop.set()
                    watcher.join(timeout=5)
                    try:  # the steps a poll missed, before the first line
                        self._show_progress(name, display)
                    except Exception:
                        pass
                    display.close()
                yield line
        finally:
            stop.set()
            watcher.join(timeout=5)
            display.close()

    def _merged_logs(self, name: str, follow: bool, tail_lines: int | None) -> Iterator[str]:
        job = self._backend.get_job(name)
        steps = [s.name for s in job.steps if s.name.startswith("node-")]
        if follow:  # nodes whose pods or processes do not exist yet are followed too
            steps = [f"node-{rank}" for rank in range(max(job.num_nodes, len(steps)))]
        return self._merged(name, steps, follow, tail_lines)

    def _merged(self, name: str, steps: list[str], follow: bool, tail_lines: int | None) -> Iterator[str]:
        from kubeflow_trainer import logs

        written: dict[str, list[logs.LogEntry]] = {}
        for step in steps:
            try:
                written[step] = list(self._backend.get_job_log_entries(name, step, False))
            except StepNotFoundError:  # not started yet (followed below)
                written[step] = []

        def render(step: str, entry: logs.LogEntry) -> str:
            return f"[{step}] {logs.latest_state(entry.text)}"

        history = [render(step, entry) for step, entry in logs.merge_by_time(written)]
        yield from history if tail_lines is None else logs.tail(history, tail_lines)
        if not follow:
            return

        def rest(step: str) -> Iterator[logs.LogEntry]:
            for index, entry in enumerate(self._backend.get_job_log_entries(name, step, True)):
                if index >= len(written[step]):
                    yield entry

        for step, entry in logs.merge_following({step: rest(step) for step in steps}):
            yield render(step, entry)

    def get_job_events(self, name: str) -> list[Event]:
        """Lifecycle events of the job, oldest first."""
        return self._backend.get_job_events(name)

    def delete_job(self, name: str) -> None:
        """Stop the job and remove everything the backend created for it."""
        self._backend.delete_job(name)

    def get_job_outputs(
        self,
        name: str,
        dest: str | os.PathLike[str],
        *,
        path: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
    ) -> list[Path]:
        """Copy the files job ``name`` wrote to its output directory (``$KUBEFLOW_TRAINER_OUTPUT_DIR``) into the
        directory ``dest`` (created if missing) and return their paths there, sorted.

        Each file keeps its path relative to the output directory (``ckpt/model.pt`` -> ``dest/ckpt/model.pt``).
        ``path`` fetches only that file or directory of the outputs. A file that exists in ``dest`` is an error
        unless ``overwrite=True``; on any error ``dest`` is left as it was. Works after the job completed or
        failed (while it runs: what is there now), from any client, until ``delete_job``. Files are streamed,
        never held in memory.

        Raises InvalidRequestError for a bad ``dest``/``path`` or an existing file, JobNotFoundError, and
        UnsupportedFeatureError on a backend that keeps no outputs (nothing is created then).
        """
        from kubeflow_trainer.outputs import check_destination, download, normalize_sub_path

        if not isinstance(name, str) or not name:
            raise InvalidRequestError(f"name must be a job name; got {name!r}")
        if not isinstance(overwrite, bool):
            raise InvalidRequestError(f"overwrite must be True or False; got {overwrite!r}")
        target = check_destination(dest)
        sub_path = normalize_sub_path(path)
        if not {Capability.OUTPUTS, Capability.OUTPUT_STORAGE} & set(self._spec.capabilities):
            raise UnsupportedFeatureError(
                f"backend '{self._spec.name}' does not keep job outputs (capability {Capability.OUTPUTS}); write "
                "them to storage the job can reach, or run the job on a backend that does (local, docker, podman)",
                backend=self._spec.name,
                missing=(str(Capability.OUTPUTS),),
            )
        self._backend.get_job(name)  # JobNotFoundError before dest is created
        files = self._backend.open_outputs(name, sub_path)
        try:
            return download(files, target, sub_path=sub_path, overwrite=overwrite)
        finally:
            close = getattr(files, "close", None)
            if close is not None:
                close()

    def wait_for_job_status(
        self,
        name: str,
        status: set[str] | None = {COMPLETE},  # noqa: B006 - upstream's default; read, never changed
        timeout: float = 600,
        polling_interval: float = 2,
        callbacks: list[Callable[[TrainJob], None]] | None = None,
        progress: bool | None = None,
    ) -> TrainJob:
        """Wait until the job reaches one of ``status`` (default ``{"Complete"}``) and return it.

        Raises JobFailedError as soon as the job is Failed (unless Failed is awaited) and JobTimeoutError
        when ``timeout`` seconds pass. ``callbacks`` run with the job every ``polling_interval`` seconds and
        on every status change. While the job prepares (packages installing, image pulling, nodes starting)
        a progress display shows it (:mod:`kubeflow_trainer.progress`); ``progress=False`` or
        ``KUBEFLOW_TRAINER_PROGRESS=0`` turns it off.
        """
        from kubeflow_trainer.progress import ProgressDisplay

        with ProgressDisplay(name, progress=progress) as display:
            return self._wait(name, status, timeout, polling_interval, callbacks, display)

    def _wait(
        self,
        name: str,
        status: set[str] | None,
        timeout: float,
        polling_interval: float,
        callbacks: list[Callable[[TrainJob], None]] | None,
        display: Any,
    ) -> TrainJob:
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
            try:
                self._show_progress(name, display, job)
            except Exception:  # the display is a courtesy: it never breaks a wait
                display.close()
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
        """The job's failure, root cause first: the user's exception with its file and line (from the job's or
        the failed step's message, else the last traceback in the failed step's log), then each failed step
        and its last log lines."""
        from kubeflow_trainer.rootcause import from_log

        failed = [s for s in job.steps if s.status == FAILED]
        tails: dict[str, list[str]] = {}
        for step in failed[:2]:
            try:
                tails[step.name] = list(self._backend.get_job_logs(job.name, step=step.name))
            except Exception:  # logs are a courtesy here; the failure is what matters
                tails[step.name] = []
        candidates = [job.message or ""] + [f"{s.name} failed: {s.message}" for s in failed if s.message]
        headline = next((c for c in candidates if 'File "' in c), None)
        if headline is None:
            for step in failed[:2]:
                found = from_log(tails[step.name][-300:])
                if found:
                    headline = f"{step.name} failed: {found.describe()} (from its log)"
                    break
        headline = headline or next((c for c in candidates if c), "")
        parts = [f"TrainJob '{job.name}' failed" + (f": {headline}" if headline else "")]
        for step in failed[:2]:
            detail = f" exit code {step.exit_code}" if step.exit_code is not None else ""
            parts.append(f"\n  step {step.name} failed{detail}{': ' + step.message if step.message else ''}")
            if tails[step.name]:
                parts.append("\n    " + "\n    ".join(tails[step.name][-10:]))
        parts.append(f"\nSee get_job_logs('{job.name}', step=...) for the full logs.")
        return "".join(parts)
