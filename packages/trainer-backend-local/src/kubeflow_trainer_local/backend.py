"""The LocalProcess backend: each job runs as local processes, one ``torchrun`` per node, in a cached
virtualenv, supervised by a detached process, with its record on disk.

:meth:`LocalProcessBackend.render` is the one place where a job plan becomes this backend's native
request, a :class:`~kubeflow_trainer_local.request.LocalJobRequest` (environments, initializer and node
processes, workspace files); :meth:`LocalProcessBackend.submit` writes exactly that request and starts the
supervisor, which runs it.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import IO, Any

from pydantic import SecretStr

from kubeflow_trainer import (
    AlreadyExistsError,
    Backend,
    BackendError,
    Event,
    InvalidRequestError,
    JobNotFoundError,
    Runtime,
    Step,
    StepNotFoundError,
    TrainJob,
    UnsupportedFeatureError,
    restarts,
)
from kubeflow_trainer.admission import AdmissionQueue, Ticket, default_limit
from kubeflow_trainer.initializers import RUNNER_FILE, node_env, runner_source
from kubeflow_trainer.jobside import stand_in_files
from kubeflow_trainer.logclock import timed_lines
from kubeflow_trainer.logs import LogEntry
from kubeflow_trainer.outputs import OUTPUT_DIR_ENV, OutputFile, data_dir_env, iter_directory
from kubeflow_trainer.plan import JobPlan
from kubeflow_trainer.preparation import initializer_progress
from kubeflow_trainer.rootcause import ERROR_FILE_ENV
from kubeflow_trainer.trainjob_status import STATUS_FILE, STATUS_FILE_ENV, trainer_status_from_json
from kubeflow_trainer.types import JobStatus, Preparation, TrainerStatus
from kubeflow_trainer_local.config import LocalProcessBackendConfig
from kubeflow_trainer_local.envcache import (
    CachedEnvironment,
    EnvironmentCache,
    EnvSpec,
    interpreter_identity,
    merge_requirements,
    resolve_installer,
    satisfied_by_base,
)
from kubeflow_trainer_local.pipconfig import read_pip_settings
from kubeflow_trainer_local.request import (
    UID_ENV,
    Environment,
    HotStart,
    InitializerProcess,
    LocalJobRequest,
    LocalWorkspace,
    NodeProcess,
    Rendezvous,
)
from kubeflow_trainer_local.store import (
    ERROR_FILE_SUFFIX,
    TERMINAL,
    JobRecord,
    Reason,
    admission_dir,
    jobs_dir,
    now_iso,
    read_json,
    status_of,
    write_json_atomic,
)
from kubeflow_trainer_local.supervisor import free_port, killpg, process_identity
from kubeflow_trainer_local.workspaces import ensure_cached, link_into

SUPERVISOR_FILE = "supervisor.json"
SUPERVISOR_MODULE = "kubeflow_trainer_local.supervisor"
SUBMIT_LOCK = "submit.lock"
"""Held (``flock``) by the submitting client from the record's creation until the supervisor is recorded: a
record with neither a holder nor a supervisor is a submission whose client died in ``train()``."""
ENVIRONMENT_STEP = "environment"
"""Extra log step: the installer output of the job's environment."""
LOOPBACK = "127.0.0.1"
LOG_READ_SIZE = 1 << 20
"""Bytes read from a log file at a time by ``get_job_logs``: whole lines of a block are yielded at once (a
followed line still comes as soon as it is written; memory stays at about one block, whatever the log's size)."""


def _alive(pid: int | None, create_time: float | None) -> bool:
    """True when ``pid`` runs and is the process that was recorded (not a reused pid, not a zombie)."""
    import psutil

    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.05:
            return False
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _step(name: str, state: dict[str, Any], processes: int) -> Step:
    """A step as ``get_job`` reports it, from its recorded state."""
    return Step(
        name=name,
        status=status_of(state),
        pod_name=str(state.get("pid") or ""),
        device="cpu",
        device_count=str(processes),
        exit_code=state.get("exit_code"),
        message=state.get("message"),
    )


def _preparation(state: dict[str, Any], steps: list[Step], record: JobRecord) -> Preparation | None:
    """What the job prepares: the environment (the installer's package counts, recorded by the supervisor),
    else the initializer step running: its bytes and files fetched (the last progress line of its log), or the
    steps done of all."""
    if state.get("preparation"):
        return Preparation.model_validate(state["preparation"])
    inits = [s for s in steps if not s.name.startswith("node-")]
    running = [s.name for s in inits if s.status == JobStatus.RUNNING]
    if running and all(s.status == JobStatus.CREATED for s in steps if s.name.startswith("node-")):
        fetched = initializer_progress(_log_tail(record.log_path(running[0])))
        if fetched is not None:
            return fetched
        done = sum(1 for s in inits if s.status == JobStatus.COMPLETE)
        return Preparation(phase="initializing", done=done, total=len(inits), unit="steps", detail=", ".join(running))
    nodes = [s for s in steps if s.name.startswith("node-")]
    waiting = [s for s in nodes if s.status == JobStatus.CREATED]
    if state.get("environment") == "ready" and waiting and all(s.status == JobStatus.COMPLETE for s in inits):
        return Preparation(phase="starting nodes", done=len(nodes) - len(waiting), total=len(nodes), unit="nodes")
    return None


def _log_tail(path: str, size: int = 4096) -> list[str]:
    """The last lines of a log file (its last ``size`` bytes); none when it does not exist yet."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - size))
            return fh.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def _why_supervisor_died(job_dir: str) -> str:
    """The likely cause of a supervisor's death: a full disk (it cannot record anything) or a kill."""
    try:
        if shutil.disk_usage(job_dir).free < 1024 * 1024:
            return f"No space left on device: the disk holding {job_dir} is full; free space on it"
    except OSError:
        pass
    return "killed, or the machine restarted"


def _record_failure(record: JobRecord, state: dict[str, Any], reason: Reason) -> dict[str, Any]:
    """Record a Failed state found by a reader; when the record cannot be written (a full disk) the state is
    still returned, its message saying why it is not recorded."""
    try:
        record.write_state(state)
        record.add_event("TrainJob", record.name, reason, state["message"])
    except OSError as exc:
        state["message"] += f" (not recorded in {record.dir}: {exc.strerror})"
    return state


def _submitting(job_dir: str) -> bool:
    """True while a client holds the record's submit lock (or the record predates the lock)."""
    try:
        fd = os.open(os.path.join(job_dir, SUBMIT_LOCK), os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class LocalProcessBackend(Backend[LocalJobRequest]):
    """Runs jobs as local processes. See the package README for the layout and the guarantees."""

    name = "local"
    request_model = LocalJobRequest
    status_poll_interval = 0.1

    def __init__(self, config: LocalProcessBackendConfig) -> None:
        super().__init__(config)
        self.config: LocalProcessBackendConfig = config
        self.cache = EnvironmentCache(config.cache_dir)
        self._children: list[subprocess.Popen[bytes]] = []

    # Translation: plan -> native request ---------------------------------------------------------------
    def render(self, plan: JobPlan) -> LocalJobRequest:
        """The job's :class:`LocalJobRequest`: what the supervisor runs. No side effects (a free port and a
        random uid are chosen; nothing is created)."""
        if plan.trainer_kind != "custom" or plan.script is None:
            raise InvalidRequestError(
                "the local backend runs CustomTrainer jobs (a Python function); pass trainer=CustomTrainer(...)"
            )
        try:
            requirements = merge_requirements(plan.runtime.trainer.packages, plan.packages_to_install)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from exc
        python, python_version = interpreter_identity(self.config.python or sys.executable)
        base_usable = self.config.system_site_packages and python == os.path.realpath(sys.executable)
        pip = read_pip_settings().with_job_indexes(plan.pip_index_urls)
        installer = resolve_installer(self.config.installer)

        def environment(wanted: Sequence[str]) -> Environment:
            skipped = satisfied_by_base(list(wanted)) if base_usable else []
            spec = EnvSpec(
                python=python,
                python_version=python_version,
                requirements=tuple(r for r in wanted if r not in skipped),
                pip=pip,
                system_site_packages=self.config.system_site_packages,
                installer=installer,
            )
            return Environment(key=spec.key(), cache_dir=self.cache.root, spec=spec, satisfied_by_base=skipped)

        trainer_env = environment(requirements)
        workspace_request = None
        if plan.workspace is not None:
            plan.workspace.check_limit(
                self.config.workspace_limit,
                backend=self.name,
                why="it is copied once into the workspace cache on this disk; set "
                "LocalProcessBackendConfig(workspace_limit=...) to change it",
                alternative="keep data sets outside the workspace and read them from their own directory",
            )
            workspace_request = LocalWorkspace(
                cache_entry=os.path.join(self.config.workspace_cache_dir, plan.workspace.digest),
                snapshot=plan.workspace,
            )
        layout = JobRecord(self.config.state_dir, plan.name).layout()
        workspace = layout.workspace
        uid = uuid.uuid4().hex
        files = dict(plan.files)
        initializers = []
        init_steps = list(plan.initializer_steps)
        for init in init_steps:
            init_env = environment(init.requirements)
            spec_file = f".kft/{init.step}.json"
            cache_dir = os.path.join(self.config.data_cache_dir, init.cache) if init.cache else None
            step_spec = init.spec(
                output=os.path.join(workspace, init.target),
                status_dir=layout.status_dir,
                cache_dir=cache_dir,
                timeout=self.config.initializer_timeout,
            )
            files[spec_file] = json.dumps(step_spec, indent=1, sort_keys=True)
            initializers.append(
                InitializerProcess(
                    step=init.step,
                    argv=[
                        os.path.join(init_env.venv, "bin", "python"),
                        os.path.join(workspace, RUNNER_FILE),
                        os.path.join(workspace, spec_file),
                    ],
                    env={
                        "PYTHONUNBUFFERED": "1",
                        UID_ENV: uid,
                        "KUBEFLOW_TRAINER_JOB_NAME": plan.name,
                        "KUBEFLOW_TRAINER_STEP": init.step,
                    },
                    cwd=workspace,
                    source=init.describe(),
                    cache=init.cache,
                    environment=init_env,
                    spec_file=spec_file,
                    timeout_seconds=self.config.initializer_timeout,
                    secrets={var: SecretStr(value) for var, value in init.secrets.items()},
                )
            )
        if init_steps:
            files[RUNNER_FILE] = runner_source()
        files.update(stand_in_files(os.path.dirname(plan.script)))
        port = free_port() if plan.framework == "torch" else 0
        allowed_cpus = self._cpus(plan)
        venv = trainer_env.venv
        nodes = []
        for step in plan.node_steps():
            rank = step.rank or 0
            env = {"VIRTUAL_ENV": venv, "PYTHONUNBUFFERED": "1", **plan.node_env(rank, LOOPBACK, port)}
            env.update(node_env(init_steps, workspace))
            env[UID_ENV] = uid
            env[STATUS_FILE_ENV] = os.path.join(workspace, STATUS_FILE)
            env[ERROR_FILE_ENV] = os.path.join(layout.logs_dir, f"{step.name}{ERROR_FILE_SUFFIX}")
            env[OUTPUT_DIR_ENV] = layout.outputs_dir
            env.update({data_dir_env(dir_name): path for dir_name, path in plan.data_dirs.items()})
            nodes.append(
                NodeProcess(
                    step=step.name,
                    rank=rank,
                    argv=plan.node_command(
                        rank,
                        LOOPBACK,
                        port,
                        workspace,
                        torchrun=os.path.join(venv, "bin", "torchrun"),
                        python=os.path.join(venv, "bin", "python"),
                    ),
                    env=env,
                    cwd=workspace,
                    path_prepend=[os.path.join(venv, "bin")],
                    cpus=self._node_cpus(plan, allowed_cpus, rank),
                )
            )
        return LocalJobRequest(
            name=plan.name,
            uid=uid,
            runtime=plan.runtime.model_copy(update={"spec": None}),
            num_nodes=plan.num_nodes,
            procs_per_node=plan.procs_per_node,
            labels=dict(plan.labels),
            annotations=dict(plan.annotations),
            layout=layout,
            environment=trainer_env,
            files=files,
            workspace=workspace_request,
            initializers=initializers,
            rendezvous=Rendezvous(master_addr=LOOPBACK, master_port=port),
            nodes=nodes,
            active_deadline_seconds=plan.active_deadline_seconds,
            stop_grace_seconds=self.config.stop_grace_seconds,
            hot_start=(
                HotStart(idle_seconds=self.config.hot_start_idle_seconds, socket_dir=self.config.hot_start_dir)
                if self.config.hot_starts
                else None
            ),
            max_running_jobs=self.config.max_running_jobs or default_limit(),
            keep_environment=not self.config.cleanup_venv,
        )

    @staticmethod
    def _cpus(plan: JobPlan) -> list[int] | None:
        if plan.resources.cpu is None:
            return None
        wanted = math.ceil(plan.resources.cpu)
        allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if not allowed:
            raise UnsupportedFeatureError(
                "cpu limits need CPU affinity (Linux); remove resources_per_node['cpu']",
                backend="local",
                missing=("cpu-limit",),
            )
        if wanted > len(allowed):
            raise InvalidRequestError(
                f"resources_per_node['cpu']={plan.resources.cpu} but this machine gives the job {len(allowed)} "
                f"CPUs; ask for at most {len(allowed)}"
            )
        return allowed

    @staticmethod
    def _node_cpus(plan: JobPlan, allowed: list[int] | None, rank: int) -> list[int] | None:
        """The cpu request rounded up to whole cores, pinned round-robin so that nodes spread out."""
        if allowed is None or plan.resources.cpu is None:
            return None
        wanted = math.ceil(plan.resources.cpu)
        return sorted({allowed[(rank * wanted + i) % len(allowed)] for i in range(wanted)})

    # Creating jobs ----------------------------------------------------------------------------------
    def submit(self, request: LocalJobRequest) -> None:
        """Create the job directory, write ``request``'s files and the request itself (secrets left out),
        and start the supervisor, which loads that file and runs it. The secrets travel in the supervisor's
        environment."""
        record = JobRecord(self.config.state_dir, request.name)
        if record.layout() != request.layout:
            raise InvalidRequestError(
                f"the request's job directory {request.layout.job_dir} is not where this backend keeps job "
                f"{request.name!r} ({record.dir}); submit a request rendered by this backend's configuration"
            )
        os.makedirs(jobs_dir(record.state_dir), exist_ok=True)
        try:
            os.mkdir(record.dir, 0o700)  # atomic: a taken name fails here, before anything starts
        except FileExistsError:
            raise AlreadyExistsError(request.name, self.name) from None
        submitting = os.open(os.path.join(record.dir, SUBMIT_LOCK), os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            fcntl.flock(submitting, fcntl.LOCK_EX)
            os.mkdir(request.layout.logs_dir)
            os.mkdir(request.layout.workspace)
            if request.layout.outputs_dir:
                os.mkdir(request.layout.outputs_dir)
            if request.workspace is not None:
                entry = ensure_cached(os.path.dirname(request.workspace.cache_entry), request.workspace.snapshot)
                link_into(entry, request.workspace.snapshot, request.layout.workspace)
            for rel, content in request.files.items():
                path = os.path.join(request.layout.workspace, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(content)
            queue = AdmissionQueue(admission_dir(record.state_dir))
            queued = len(queue.running()) >= request.max_running_jobs or bool(queue.waiting())
            record.write_state(
                {
                    "created": now_iso(),
                    "status": JobStatus.SUSPENDED if queued else JobStatus.CREATED,
                    "message": f"queued: at most {request.max_running_jobs} jobs run at once" if queued else None,
                    "nodes": {n.step: {"status": JobStatus.CREATED, "rank": n.rank} for n in request.nodes},
                    "initializers": {i.step: {"status": JobStatus.CREATED} for i in request.initializers},
                }
            )
            record.write_request(request)
            record.add_event("TrainJob", request.name, Reason.CREATED, f"TrainJob {request.name} created")
            secrets = request.secret_environment()
            # The job's place in the admission queue is taken now (submission order); the supervisor inherits
            # the ticket's locked descriptor and waits its turn, with no client needed.
            ticket = queue.enqueue(request.name)
            try:
                with open(record.log_path("supervisor"), "ab") as log:
                    pid = self._fork_supervisor(record, secrets, log, ticket)
                    if pid is None:
                        proc = subprocess.Popen(
                            [
                                sys.executable,
                                "-m",
                                SUPERVISOR_MODULE,
                                record.state_dir,
                                request.name,
                                f"{ticket.fd}:{ticket.path}",
                            ],
                            env={**os.environ, **secrets} if secrets else None,
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                            close_fds=True,
                            pass_fds=(ticket.fd,),
                        )
                        self._children.append(proc)
                        pid = proc.pid
            finally:
                os.close(ticket.fd)  # the supervisor holds the lock now (or the ticket is dead)
            write_json_atomic(
                os.path.join(record.dir, SUPERVISOR_FILE),
                {"pid": pid, "create_time": process_identity(pid)},
            )
        except BaseException:
            shutil.rmtree(record.dir, ignore_errors=True)
            raise
        finally:
            os.close(submitting)

    def _fork_supervisor(
        self, record: JobRecord, secrets: dict[str, str], log: IO[bytes], ticket: Ticket
    ) -> int | None:
        """With hot starts on: the pid of the job's supervisor forked from the SDK's zygote (no interpreter
        start-up, no imports), or None (then it is started as a process; a zygote is started for the next
        jobs when none runs). Its environment is the one a started supervisor gets, and it inherits the
        job's locked admission ticket as a started one does (passed over the zygote's socket)."""
        if not self.config.hot_starts:
            return None
        from kubeflow_trainer_local.sdk_zygote import FD_PLACEHOLDER, SupervisorForker, inherited_environ

        env = {**os.environ, **secrets} if secrets else inherited_environ()

        forker = SupervisorForker(self.config.hot_start_dir, self.config.hot_start_idle_seconds)
        pid = forker.fork(
            SUPERVISOR_MODULE,
            [record.state_dir, record.name, f"{FD_PLACEHOLDER}:{ticket.path}"],
            env,
            log,
            pass_fds=[ticket.fd],
        )
        if forker.started is not None:
            self._children.append(forker.started)
        return pid

    # Reading jobs -----------------------------------------------------------------------------------
    def _reap(self) -> None:
        self._children = [p for p in self._children if p.poll() is None]

    def _record(self, name: str) -> JobRecord:
        record = JobRecord(self.config.state_dir, name)
        if not record.exists():
            raise JobNotFoundError(name, self.name)
        return record

    def _state(self, record: JobRecord) -> dict[str, Any]:
        """The job's state; a job whose supervisor vanished without a result becomes Failed here."""
        self._reap()
        state = record.state()
        if status_of(state) in TERMINAL:
            return state
        try:
            sup = read_json(os.path.join(record.dir, SUPERVISOR_FILE))
        except FileNotFoundError:
            if _submitting(record.dir):
                return state  # train() is still starting it
            state = record.state()
            if status_of(state) in TERMINAL or os.path.exists(os.path.join(record.dir, SUPERVISOR_FILE)):
                return self._state(record)
            message = (
                "the process that submitted the job exited inside train() (killed?) before it started the "
                f"job's supervisor; nothing of the job runs. Remove it with delete_job('{record.name}') and "
                "submit it again"
            )
            for node in [*state["nodes"].values(), *state.get("initializers", {}).values()]:
                node.update(status=JobStatus.FAILED, message=message)
            state.update(status=JobStatus.FAILED, message=message, finished=now_iso())
            return _record_failure(record, state, Reason.FAILED)
        if _alive(sup.get("pid"), sup.get("create_time")):
            return state
        state = record.state()  # it may have finished between the two reads
        if status_of(state) in TERMINAL:
            return state
        message = (
            f"the job's supervisor process (pid {sup.get('pid')}) exited without recording a result "
            f"({_why_supervisor_died(record.dir)}); its processes are gone"
        )
        for node in [*state["nodes"].values(), *state.get("initializers", {}).values()]:
            if _alive(node.get("pid"), node.get("create_time")):
                killpg(node["pid"], signal.SIGKILL)  # nobody is left to record them: stop the orphans
            if status_of(node) not in TERMINAL:
                node.update(status=JobStatus.FAILED, message=message)
        self._sweep(record.request().uid)
        state.update(status=JobStatus.FAILED, message=message, finished=now_iso())
        return _record_failure(record, state, Reason.SUPERVISOR_LOST)

    def _job(self, record: JobRecord) -> TrainJob:
        request = record.request()
        state = self._state(record)
        inits = state.get("initializers", {})
        steps = [_step(i.step, inits.get(i.step, {}), 1) for i in request.initializers]
        steps += [_step(n.step, state["nodes"].get(n.step, {}), request.procs_per_node) for n in request.nodes]
        for step in steps:
            step.restarts = len(self._restarts(record, step.name))
        return TrainJob(
            name=record.name,
            runtime=request.runtime,
            steps=steps,
            num_nodes=request.num_nodes,
            creation_timestamp=datetime.fromisoformat(state["created"]),
            status=status_of(state),
            message=state.get("message"),
            backend=self.name,
            labels=dict(request.labels),
            annotations=dict(request.annotations),
            trainer_status=self._trainer_status(record),
            preparation=_preparation(state, steps, record),
        )

    @staticmethod
    def _trainer_status(record: JobRecord) -> TrainerStatus | None:
        try:
            with open(os.path.join(record.workspace, STATUS_FILE), "rb") as handle:
                return trainer_status_from_json(handle.read())
        except OSError:
            return None

    def get_job(self, name: str) -> TrainJob:
        return self._job(self._record(name))

    def list_jobs(self, runtime: Runtime | None = None) -> list[TrainJob]:
        root = jobs_dir(self.config.state_dir)
        if not os.path.isdir(root):
            return []
        jobs = []
        for name in os.listdir(root):
            record = JobRecord(self.config.state_dir, name)
            try:
                if not record.exists():
                    continue
                job = self._job(record)
            except (FileNotFoundError, JobNotFoundError):
                continue  # being created or deleted right now
            except BackendError:
                continue  # a record this version cannot read: get_job names it, delete_job removes it
            if runtime is None or (job.runtime is not None and job.runtime.name == runtime.name):
                jobs.append(job)
        return sorted(jobs, key=lambda j: j.creation_timestamp)

    def get_job_logs(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[str]:
        record = self._record(name)
        steps = record.request().steps()
        if step not in steps and step != ENVIRONMENT_STEP:
            raise StepNotFoundError(name, step, steps)
        return self._follow(record, step, follow)

    def get_job_log_entries(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[LogEntry]:
        """A node's log lines with when each was written (the supervisor's :mod:`log clock
        <kubeflow_trainer.logclock>`, within 0.05 s); followed lines arrive as they are written."""
        record = self._record(name)
        if follow or not step.startswith("node-"):
            return (LogEntry(None, line) for line in self.get_job_logs(name, step, follow))
        if step not in record.request().steps():
            raise StepNotFoundError(name, step, record.request().steps())
        return (LogEntry(when, text) for when, text in timed_lines(record.log_path(step)))

    def _step_done(self, record: JobRecord, step: str) -> bool:
        try:
            state = self._state(record)
        except FileNotFoundError:
            return True  # deleted while following
        if step == ENVIRONMENT_STEP:
            return status_of(state) in TERMINAL or state.get("environment") == "ready"
        step_state = state["nodes"].get(step) or state.get("initializers", {}).get(step, {})
        return status_of(step_state) in TERMINAL or status_of(state) in TERMINAL

    def _follow(self, record: JobRecord, step: str, follow: bool) -> Iterator[str]:
        path = record.log_path(step)
        while not os.path.exists(path):
            if not follow or self._step_done(record, step):
                return
            time.sleep(0.02)
        with open(path, "rb", buffering=0) as fh:
            parts: list[bytes] = []  # the line being written (no newline yet), in the pieces read so far
            last_check = 0.0
            while True:
                chunk = fh.read(LOG_READ_SIZE)
                if chunk:
                    end = chunk.rfind(b"\n")
                    if end < 0:
                        parts.append(chunk)
                        continue
                    parts.append(chunk[:end])
                    done = b"".join(parts)  # whole lines, decoded at once: a newline is never inside a character
                    parts = [chunk[end + 1 :]] if end + 1 < len(chunk) else []
                    for line in done.decode(errors="replace").split("\n"):
                        yield line.rstrip("\r")
                    continue
                if not follow:
                    break
                now = time.monotonic()
                if now - last_check >= 0.1:
                    last_check = now
                    if self._step_done(record, step):
                        parts.append(fh.read())
                        break
                time.sleep(0.01)
            pending = b"".join(parts)
            if pending:
                yield from (line.rstrip("\r") for line in pending.decode(errors="replace").split("\n") if line)

    def get_job_events(self, name: str) -> list[Event]:
        record = self._record(name)
        self._state(record)
        events = [
            Event(
                involved_object_kind=e["kind"],
                involved_object_name=e["object"],
                reason=e["reason"],
                message=e["message"],
                event_time=datetime.fromisoformat(e["time"]),
            )
            for e in record.events()
        ]
        for node in record.request().nodes:
            events += restarts.events(node.step, self._restarts(record, node.step))
        return sorted(events, key=lambda e: e.event_time)

    def open_outputs(self, name: str, path: str = "") -> Iterator[OutputFile]:
        """The files under the job's ``outputs/`` directory, read in place (it stays until ``delete_job``)."""
        record = self._record(name)
        return iter_directory(record.outputs_dir, path)

    @staticmethod
    def _restarts(record: JobRecord, step: str) -> list[tuple[int, float]]:
        """torchrun's restarts of ``step``'s workers, as they recorded them in the workspace."""
        try:
            with open(os.path.join(record.workspace, restarts.RESTARTS_DIR, step)) as fh:
                return restarts.parse(fh.read())
        except OSError:
            return []

    # Deleting jobs ----------------------------------------------------------------------------------
    def delete_job(self, name: str) -> None:
        record = self._record(name)
        try:
            uid: str | None = record.request().uid
        except BackendError:
            uid = None  # an unreadable record: stop what state.json names and remove it
        try:
            sup = read_json(os.path.join(record.dir, SUPERVISOR_FILE))
        except FileNotFoundError:
            sup = {}
        if _alive(sup.get("pid"), sup.get("create_time")):
            self._terminate(sup["pid"], self.config.stop_grace_seconds + 5)
        try:
            state = record.state()
        except FileNotFoundError:
            state = {"nodes": {}}
        for node in [*state.get("nodes", {}).values(), *state.get("initializers", {}).values()]:
            if _alive(node.get("pid"), node.get("create_time")):
                killpg(node["pid"], signal.SIGKILL)
        self._sweep(uid)
        shutil.rmtree(record.dir, ignore_errors=True)
        self._reap()

    def _terminate(self, pid: int, timeout: float) -> None:
        import psutil

        try:
            proc = psutil.Process(pid)
            proc.terminate()
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            killpg(pid, signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
        self._reap()

    @staticmethod
    def _sweep(uid: str | None) -> None:
        """Kill any process still carrying the job's uid in its environment (e.g. daemonised children)."""
        from kubeflow_trainer_local.supervisor import sweep

        sweep(uid)

    # Environment cache ----------------------------------------------------------------------------------
    def list_environments(self) -> list[CachedEnvironment]:
        """The cached job environments."""
        return self.cache.entries()

    def prune_environments(self, older_than_seconds: float | None = None) -> list[str]:
        """Remove cached environments (not used for ``older_than_seconds``), except those of running jobs and
        of existing jobs submitted with ``cleanup_venv=False``."""
        in_use = set()
        for job in self.list_jobs():
            request = self._record(job.name).request()
            if job.status not in TERMINAL or request.keep_environment:
                in_use.update(request.environment_keys())
        return self.cache.prune(older_than_seconds, keep=in_use)

    def delete_cache(self, cache: str) -> None:
        """Remove the named initializer cache (``<data_cache_dir>/<cache>``) that ``cache=...`` filled."""
        from kubeflow_trainer.types import BaseInitializer

        BaseInitializer(storage_uri="x", cache=cache)  # the same name rules as the initializers: no paths
        path = os.path.join(self.config.data_cache_dir, cache)
        if not os.path.isdir(path):
            raise InvalidRequestError(f"there is no initializer cache {cache!r} in {self.config.data_cache_dir}")
        shutil.rmtree(path)

    def get_runtime_packages(self, runtime: Runtime) -> list[str]:
        """The runtime's requirements, pinned to what its cached environment resolved when one exists."""
        reqs = list(runtime.trainer.packages)
        for env in self.cache.entries():
            if env.ready and env.requirements == sorted(reqs):
                meta = read_json(os.path.join(env.path, "meta.json"))
                return list(meta.get("resolved") or reqs)
        return reqs
