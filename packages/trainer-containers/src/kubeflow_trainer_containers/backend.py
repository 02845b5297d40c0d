"""The shared container backend: per-job network and workspace volume, one container per node, labels as
the job registry. Written once against :class:`~kubeflow_trainer_containers.engine.ContainerEngine`;
Docker and Podman supply their engine and config.

:meth:`ContainerBackend.render` is the one place where a job plan becomes container create requests.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from pydantic import SecretStr

from kubeflow_trainer import restarts
from kubeflow_trainer.admission import AdmissionQueue, Ticket, default_limit, wait_for_turn
from kubeflow_trainer.backend import Backend
from kubeflow_trainer.errors import (
    AlreadyExistsError,
    BackendError,
    InvalidRequestError,
    JobNotFoundError,
    StepNotFoundError,
)
from kubeflow_trainer.initializers import (
    RUNNER_FILE,
    STATUS_DIR,
    InitializerStep,
    node_env,
    runner_source,
)
from kubeflow_trainer.jobside import launcher_source, peerwatch_source, stand_in_files
from kubeflow_trainer.launcher import COMPLETE_MARKER
from kubeflow_trainer.logs import LogEntry
from kubeflow_trainer.outputs import (
    CONTAINER_DATA_ROOT,
    CONTAINER_OUTPUT_DIR,
    OUTPUT_DIR_ENV,
    OutputFile,
    data_dir_env,
    iter_tar_stream,
)
from kubeflow_trainer.peerwatch import GATE_EXIT, PEER_EXIT
from kubeflow_trainer.plan import JobPlan
from kubeflow_trainer.preparation import InstallerProgress, initializer_progress
from kubeflow_trainer.rendezvous import DEFAULT_MASTER_PORT
from kubeflow_trainer.resources import parse_quantity
from kubeflow_trainer.rootcause import ERROR_FILE_ENV, environment_failure, exit_reason, from_log, parse_error_file
from kubeflow_trainer.trainjob_status import STATUS_FILE, STATUS_FILE_ENV, trainer_status_from_json
from kubeflow_trainer.types import Event, JobStatus, Preparation, Runtime, Step, TrainerStatus, TrainJob
from kubeflow_trainer_containers.config import ContainerBackendConfig
from kubeflow_trainer_containers.engine import ContainerEngine, ContainerInfo, LayerProgress, parse_time
from kubeflow_trainer_containers.request import (
    ContainerJobRequest,
    ContainerSpec,
    NetworkSpec,
    VolumeSpec,
    WorkspaceVolume,
)

WORKSPACE = "/workspace"
LAUNCHER = ".kft/launch.py"
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ")
"""An engine's log timestamp and the space after it."""
ERRORS_DIR = ".kft/errors"
"""Where each node's torchrun writes its error file (``TORCHELASTIC_ERROR_FILE``), in the job's volume."""
PIP_FAILED = 97
LAUNCHER_INSTALLING = "[kubeflow-trainer] installing "
LAUNCHER_INSTALLED = "[kubeflow-trainer] packages installed"
"""The launcher's exit code when installing ``packages_to_install`` failed (:mod:`kubeflow_trainer.launcher`)."""
WORKSPACE_SOURCE = "/opt/kft/workspace"
"""Where node containers mount the content-addressed workspace volume; the launcher copies it to the
working directory (:data:`WORKSPACE`)."""
WORKSPACE_LIMIT_WHY = "its archive is built in memory and sent through the engine's API"
CACHE_MOUNT = "/kft-cache"
SOURCE_MOUNT = "/kft-source"
WATCHER = ".kft/peerwatch.py"
WATCH_DIR = ".kft/watch"
WRAP = (
    "if command -v python3 >/dev/null 2>&1; then "
    f'exec python3 {WORKSPACE}/{WATCHER} "$@"; fi; '
    'echo "[kubeflow-trainer] the image has no python3: peers stop this step only when a client reads the job"; '
    "trap 'exit 143' TERM INT; "
    "for step in $4; do "
    f'while [ ! -e "$3/$step.ok" ]; do '
    'if [ -e "$3/$step.failed" ]; then '
    'echo "[kubeflow-trainer] the trainer was not started: $step failed (see its logs)"; '
    f"exit {GATE_EXIT}; fi; sleep 0.1; done; done; "
    'shift 5; exec "$@"'
)
"""Every step of a job (initializers and nodes) runs under :mod:`kubeflow_trainer.peerwatch`: the nodes' trainer
starts only after every initializer wrote its ``.ok`` file, and when one step fails or is killed the others stop
within seconds, with no client running (the steps talk through files on the job's volume). ``sh`` and
``python3`` are what the image needs; an image without ``python3`` still gets the initializer gate."""


def _watched(step: str, wait_for: list[str], command: list[str]) -> list[str]:
    """``command`` run as ``step`` of the job under the watcher (see :data:`WRAP`)."""
    return [
        "/bin/sh",
        "-c",
        WRAP,
        "kft-watch",
        step,
        f"{WORKSPACE}/{WATCH_DIR}",
        f"{WORKSPACE}/{STATUS_DIR}",
        " ".join(wait_for),
        "--",
        *command,
    ]


_STOPPED = (GATE_EXIT, PEER_EXIT)
"""Exit codes of steps that the watcher stopped (or never started) because another step failed."""


def _status(info: ContainerInfo) -> JobStatus:
    if info.state in ("created",):
        return JobStatus.CREATED
    if info.state in ("running", "restarting", "paused"):
        return JobStatus.RUNNING
    if info.state in ("exited", "dead", "stopped"):
        return JobStatus.COMPLETE if info.exit_code == 0 else JobStatus.FAILED
    return JobStatus.FAILED if info.state == "removing" else JobStatus.CREATED


PARALLEL_CALLS = 8
"""Engine calls at most in flight at once when a job's objects are created and started."""


def _concurrently(calls: list[Callable[[], object]], done: Callable[[int], object] | None = None) -> None:
    """Run ``calls`` (no arguments) at once, on a thread each (one runs inline), and wait for all of them;
    ``done(i)`` is called for each call ``i`` that succeeded. Raises the error of the first call that failed
    (in list order) once every call has ended, so the caller's clean-up sees everything that was made."""
    if len(calls) == 1:
        calls[0]()
        if done is not None:
            done(0)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(len(calls), PARALLEL_CALLS), thread_name_prefix="kft-engine") as pool:
        futures = [pool.submit(call) for call in calls]
    errors = [f.exception() for f in futures]
    if done is not None:
        for i, error in enumerate(errors):
            if error is None:
                done(i)
    for error in errors:
        if error is not None:
            raise error


class ContainerBackend(Backend[ContainerJobRequest]):
    """Runs each node of a job in its own container on one engine."""

    request_model = ContainerJobRequest

    status_poll_interval = 0.25

    def __init__(self, config: ContainerBackendConfig, engine: ContainerEngine) -> None:
        super().__init__(config)
        self.config: ContainerBackendConfig = config
        self.engine = engine
        self.name = engine.name  # "docker" / "podman": the backend is named after its engine
        self._causes: dict[str, str | None] = {}
        self._installed: set[str] = set()
        self._runners: list[subprocess.Popen[bytes]] = []
        self._released: set[str] = set()
        """Finished jobs whose network this client has released (or found gone): not looked at again."""

    def list_runtimes(self) -> list[Runtime]:
        """The runtimes of ``config.runtime_source`` (default: the built-in Kubeflow Trainer runtimes)."""
        return self.config.runtime_source.runtimes()

    # Labels ------------------------------------------------------------------------------------------
    def _label(self, key: str) -> str:
        return f"{self.config.label_prefix}/{key}"

    def _job_labels(self, name: str) -> dict[str, str]:
        return {self._label("trainjob-name"): name, self._label("backend"): self.name}

    def _resource_name(self, name: str) -> str:
        return f"{self.config.network_prefix}{name}"

    # Translation: plan -> native request ---------------------------------------------------------------
    def render(self, plan: JobPlan) -> ContainerJobRequest:
        """The engine requests for ``plan``: network, volume, files, one container per node. Pure: it calls
        the engine for nothing, and the same plan gives the same request."""
        image = self._image(plan)
        labels = {**plan.labels, **self._job_labels(plan.name)}
        meta = {
            "runtime": plan.runtime.model_dump(mode="json", exclude={"spec"}),
            "num_nodes": plan.num_nodes,
            "procs_per_node": plan.procs_per_node,
            "gpus": plan.resources.gpu or 0,
            "max_restarts": plan.max_restarts,
            "labels": dict(plan.labels),
            "annotations": dict(plan.annotations),
        }
        labels[self._label("job-meta")] = json.dumps(meta, sort_keys=True)
        resource = self._resource_name(plan.name)
        network = self._network(plan)
        outputs = self._outputs_volume(plan.name)
        data_binds = {path: f"{CONTAINER_DATA_ROOT}/{name}" for name, path in plan.data_dirs.items()}
        master = self.engine.master_address(f"{plan.name}-node-0")
        files = dict(plan.files)
        if plan.trainer_kind == "custom" and plan.script is not None:
            files.update(stand_in_files(os.path.dirname(plan.script)))
        workspace = self._workspace(plan)
        launcher = plan.trainer_kind == "custom" and (bool(plan.packages_to_install) or workspace is not None)
        if plan.trainer_kind == "custom":
            files[f"{ERRORS_DIR}/README"] = "Error files of the job's nodes (torchrun's TORCHELASTIC_ERROR_FILE).\n"
        if launcher:  # installs packages_to_install, then execs torchrun; skipped (one interpreter less) otherwise
            files[LAUNCHER] = launcher_source()
        shm = int(parse_quantity(self.config.shm_size, "shm_size"))
        if plan.resources.memory:
            shm = min(shm, plan.resources.memory // 2)
        pip_args: list[str] = []
        if plan.pip_index_urls:
            pip_args = ["--index-url", plan.pip_index_urls[0]]
            for url in plan.pip_index_urls[1:]:
                pip_args += ["--extra-index-url", url]
        init_steps = plan.initializer_steps
        containers = [self._initializer_container(plan, init, image, labels, pip_args, files) for init in init_steps]
        if init_steps:
            files[RUNNER_FILE] = runner_source()
        files[WATCHER] = peerwatch_source()
        for step in plan.node_steps():
            rank = step.rank or 0
            env = {
                "PYTHONUNBUFFERED": "1",
                **plan.node_env(rank, master, DEFAULT_MASTER_PORT),
                STATUS_FILE_ENV: f"{WORKSPACE}/{STATUS_FILE}",
                OUTPUT_DIR_ENV: CONTAINER_OUTPUT_DIR,
                **{data_dir_env(name): f"{CONTAINER_DATA_ROOT}/{name}" for name in plan.data_dirs},
            }
            if plan.trainer_kind == "custom":
                command = plan.node_command(rank, master, DEFAULT_MASTER_PORT, WORKSPACE)
                env[ERROR_FILE_ENV] = f"{WORKSPACE}/{ERRORS_DIR}/{step.name}.json"
                if launcher:
                    if plan.packages_to_install:
                        env["KFT_PACKAGES"] = json.dumps(plan.packages_to_install)
                        env["KFT_PIP_ARGS"] = json.dumps(pip_args)
                    if workspace is not None:
                        env["KFT_WORKSPACE_SRC"] = workspace.mount_path
                        env["KFT_WORKSPACE_DIR"] = WORKSPACE
                        env["KFT_WORKSPACE_DIGEST"] = workspace.snapshot.digest
                        env["KFT_WORKSPACE_REMEDY"] = (
                            f"remove the volume ({self.engine.name} volume rm {workspace.volume.name}) and submit again"
                        )
                    command = ["python3", f"{WORKSPACE}/{LAUNCHER}", *command]
            else:
                command = [*(plan.container_command or []), *(plan.container_args or [])]
            if init_steps:
                env.update(node_env(list(init_steps), WORKSPACE))
            command = _watched(step.name, [i.step for i in init_steps], command)
            container_name = f"{plan.name}-{step.name}"
            containers.append(
                ContainerSpec(
                    name=container_name,
                    image=image,
                    command=command,
                    labels={**labels, self._label("step"): step.name},
                    env=env,
                    network=network,
                    hostname=container_name,
                    volumes={resource: WORKSPACE, outputs: CONTAINER_OUTPUT_DIR, **self._workspace_mount(workspace)},
                    binds=data_binds,
                    cpu=plan.resources.cpu,
                    memory=plan.resources.memory,
                    shm_size=shm,
                    gpus=plan.resources.gpu,
                    extended=dict(plan.resources.extended),
                )
            )
        return ContainerJobRequest(
            name=plan.name,
            engine=self.engine.name,
            image=image,
            pull_policy=self.config.pull_policy,
            network=NetworkSpec(name=network, labels=self._job_labels(plan.name)) if network else None,
            volume=VolumeSpec(name=resource, labels=self._job_labels(plan.name)),
            outputs_volume=VolumeSpec(name=outputs, labels=self._job_labels(plan.name)),
            files=files,
            workspace=workspace,
            cache_volumes=[
                VolumeSpec(name=self._cache_volume(i.cache), labels=self._cache_labels(i.cache))
                for i in init_steps
                if i.cache
            ],
            containers=containers,
            engine_requests=[self.engine.native_request(c) for c in containers],
        )

    def _network(self, plan: JobPlan) -> str | None:
        """The job's own network when it has several nodes (they resolve node 0 by its container name); None
        for one node: the engine's default bridge network gives it outbound access, and no per-job network
        holds one of the engine's address pools (Docker has about 30) until the job is deleted."""
        return self._resource_name(plan.name) if plan.num_nodes > 1 else None

    def _outputs_volume(self, name: str) -> str:
        return f"{self._resource_name(name)}-outputs"

    def _workspace(self, plan: JobPlan) -> WorkspaceVolume | None:
        """The content-addressed workspace volume of ``plan``, or None; refuses one over the size limit."""
        snapshot = plan.workspace
        if snapshot is None:
            return None
        snapshot.check_limit(
            self.config.workspace_limit,
            backend=self.name,
            why=f"{WORKSPACE_LIMIT_WHY}; set {type(self.config).__name__}(workspace_limit=...) to change it",
            alternative="mount large data instead of shipping it",
        )
        labels = {self._label("workspace"): snapshot.short_digest, self._label("backend"): self.name}
        return WorkspaceVolume(
            volume=VolumeSpec(name=f"{self.config.cache_prefix}ws-{snapshot.short_digest}", labels=labels),
            mount_path=WORKSPACE_SOURCE,
            snapshot=snapshot,
        )

    @staticmethod
    def _workspace_mount(workspace: WorkspaceVolume | None) -> dict[str, str]:
        return {workspace.volume.name: workspace.mount_path} if workspace is not None else {}

    def _fill_workspace(self, container: str, workspace: WorkspaceVolume) -> None:
        """Upload the workspace into its new volume; the archive's last member is the completion marker the
        launcher checks (a cut-off upload is detected in the job, not silently used)."""
        data = workspace.snapshot.archive(trailer=(COMPLETE_MARKER, workspace.snapshot.digest.encode()))
        self.engine.put_archive(container, workspace.mount_path, data)

    def _cache_volume(self, cache: str) -> str:
        return f"{self.config.cache_prefix}{cache}"

    def _cache_labels(self, cache: str) -> dict[str, str]:
        return {self._label("cache"): cache, self._label("backend"): self.name}

    def _initializer_container(
        self,
        plan: JobPlan,
        init: InitializerStep,
        image: str,
        labels: dict[str, str],
        pip_args: list[str],
        files: dict[str, str],
    ) -> ContainerSpec:
        """The container of one initializer step; its spec file is added to ``files``."""
        resource = self._resource_name(plan.name)
        volumes = {resource: WORKSPACE}
        binds: dict[str, str] = {}
        source_path = None
        if init.local_path is not None:
            source_path = f"{SOURCE_MOUNT}/{os.path.basename(init.local_path.rstrip('/')) or 'root'}"
            binds[init.local_path] = source_path
        if init.cache:
            volumes[self._cache_volume(init.cache)] = CACHE_MOUNT
        spec = init.spec(
            output=f"{WORKSPACE}/{init.target}",
            status_dir=f"{WORKSPACE}/{STATUS_DIR}",
            cache_dir=CACHE_MOUNT,
            source_path=source_path,
            pip_args=pip_args,
            timeout=self.config.initializer_timeout,
        )
        step_image = self.config.dataset_initializer_image if init.target == "dataset" else None
        step_image = step_image or (self.config.model_initializer_image if init.target == "model" else None)
        spec_file = f".kft/{init.step}.json"
        files[spec_file] = json.dumps(spec, indent=1, sort_keys=True)
        name = f"{plan.name}-{init.step}"
        return ContainerSpec(
            name=name,
            image=step_image or self.config.initializer_image or image,
            command=_watched(init.step, [], ["python3", f"{WORKSPACE}/{RUNNER_FILE}", f"{WORKSPACE}/{spec_file}"]),
            labels={**labels, self._label("step"): init.step},
            env={"PYTHONUNBUFFERED": "1", "KUBEFLOW_TRAINER_JOB_NAME": plan.name, "KUBEFLOW_TRAINER_STEP": init.step},
            secret_env={key: SecretStr(value) for key, value in init.secrets.items()},
            network=self._network(plan),
            hostname=name,
            volumes=volumes,
            binds=binds,
        )

    def _image(self, plan: JobPlan) -> str:
        image = plan.trainer_image or self.config.image or plan.runtime.trainer.image
        if not image:
            raise InvalidRequestError(
                f"no image for job {plan.name}: set CustomTrainer(image=...) or the backend config's image"
            )
        return str(image)

    # Creating jobs ----------------------------------------------------------------------------------
    def submit(self, request: ContainerJobRequest) -> None:
        """Create exactly ``request``: image check, volume, network, cache volumes, containers, files, start.

        Admission: when ``max_running_jobs`` jobs of this backend run already (or others wait), the job waits
        in the queue instead, holding nothing on the engine; a detached runner creates and starts it when its
        turn comes. Raises AlreadyExistsError when the engine (or the queue) has a job of that name; on any
        failure removes what it created (cache volumes that existed before are kept)."""
        self.engine.ping()
        name = request.name
        with self._claim(name):
            queue = self._queue()
            if (
                self.engine.list_containers({self._label("trainjob-name"): name})
                or self.engine.list_networks({self._label("trainjob-name"): name})
                or self._queued_record(name) is not None
            ):
                raise AlreadyExistsError(name, self.name)
            self._ensure_image(request.image, name)
            ticket = None
            with queue.decision():
                if not queue.waiting() and self._running_jobs() < self._limit():
                    self._create_and_start(request)
                else:  # admission: the job waits its turn; a detached runner starts it (no client needed)
                    ticket = queue.enqueue(name)
                    self._write_queued_record(request)
        if ticket is not None:
            self._spawn_runner(request, ticket)

    def _claim(self, name: str) -> Any:
        """Hold the submission of ``name`` to this engine against other processes of this machine, from the
        existence check until its objects exist (or it is queued): engines do not make that atomic (Docker
        creates a second network or returns the existing volume of the same name; only container names are
        unique). The lock files are one of 256 buckets per user (a collision only serialises two submissions
        briefly)."""
        import contextlib
        import fcntl
        import hashlib
        import tempfile

        identity = f"{self.engine.name}\0{getattr(self.config, 'host', None)}\0{name}"
        bucket = hashlib.sha256(identity.encode()).hexdigest()[:2]
        folder = os.path.join(tempfile.gettempdir(), f"kubeflow-trainer-{os.getuid()}", "submit-locks")
        os.makedirs(folder, mode=0o700, exist_ok=True)

        @contextlib.contextmanager
        def held() -> Iterator[None]:
            fd = os.open(os.path.join(folder, f"{bucket}.lock"), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

        return held()

    def _create_and_start(self, request: ContainerJobRequest) -> None:
        """Create the job's objects and start its containers. The volumes and the network go to the engine at
        once, and so do the containers' starts (an 8-node job's train() took 6.3 s with one start after the
        other; benchmarks/scale.py --nodes). The containers are created one after the other: a submission cut
        off meanwhile (the client killed) leaves fewer containers than nodes, which reads as Failed, where
        all of them created and none started would read as Created for ever."""
        created: list[str] = []
        new_caches: list[str] = []
        made: set[str] = set()
        try:
            creations: list[tuple[str, Any]] = [
                ("volume", lambda: self.engine.create_volume(request.volume.name, dict(request.volume.labels))),
            ]
            if request.network is not None:  # one-node jobs have none (the engine's default bridge)
                net = request.network
                creations.append(("network", lambda: self.engine.create_network(net.name, dict(net.labels))))
            if request.outputs_volume is not None:
                out = request.outputs_volume
                creations.append(("outputs", lambda: self.engine.create_volume(out.name, dict(out.labels))))
            _concurrently([call for _, call in creations], done=lambda i: made.add(creations[i][0]))
            for cache in request.cache_volumes:
                if self._ensure_cache_volume(cache.name, dict(cache.labels)):
                    new_caches.append(cache.name)
            fill = False
            if request.workspace is not None:  # named by content: an existing one holds these files
                ws = request.workspace.volume
                fill = self._ensure_cache_volume(ws.name, dict(ws.labels))
                if fill:
                    new_caches.append(ws.name)
            for spec in request.containers:  # one after the other: a job cut off here lacks containers (Failed)
                created.append(self.engine.create_container(spec))
            if request.workspace is not None and fill:
                node = next(
                    cid
                    for cid, spec in zip(created, request.containers, strict=True)
                    if request.workspace.volume.name in spec.volumes
                )
                self._fill_workspace(node, request.workspace)
            self.engine.put_files(created[0], WORKSPACE, dict(request.files))
            _concurrently([functools.partial(self.engine.start_container, c) for c in created])
        except BaseException:
            for container in created:
                self._quietly(self.engine.remove_container, container)
            if "network" in made and request.network is not None:
                self._quietly(self.engine.remove_network, request.network.name)
            if "volume" in made:
                self._quietly(self.engine.remove_volume, request.volume.name)
            if "outputs" in made and request.outputs_volume is not None:
                self._quietly(self.engine.remove_volume, request.outputs_volume.name)
            for cache_volume in new_caches:  # still empty: nothing ran
                self._quietly(self.engine.remove_volume, cache_volume)
            raise

    # Admission --------------------------------------------------------------------------------------
    def _queue(self) -> AdmissionQueue:
        directory = self.config.queue_dir
        if not directory:
            home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
            tag = "".join(c if c.isalnum() or c in "-." else "_" for c in self.config.label_prefix)
            directory = os.path.join(home, "kubeflow-trainer", f"{tag}-{self.name}-queue")
        return AdmissionQueue(directory)

    def _limit(self) -> int:
        return self.config.max_running_jobs or default_limit()

    def _running_jobs(self) -> int:
        """Jobs of this backend with a running container (the engine is the truth: no runner needs to live): one
        labelled list call, whatever the number of containers on the engine."""
        for attempt in range(3):  # a container of another job may vanish while the engine lists them (Podman)
            try:
                running = self.engine.list_container_summaries({self._label("backend"): self.name})
                break
            except BackendError:
                if attempt == 2:
                    raise
        self._release_networks(running)
        return len(
            {c.labels.get(self._label("trainjob-name")) for c in running if c.state in ("running", "restarting")}
        )

    def _release_networks(self, containers: list[ContainerInfo]) -> None:
        """Remove the networks of finished jobs among ``containers`` (every container exited), keeping the
        containers and volumes: get_job, logs and outputs read those; delete_job removes them. Called by whoever
        counts the engine's jobs (a submission, a queue runner at the head of the queue) and by get_job, so that
        finished jobs do not hold the engine's address pools (Docker's default ones hold about 30 networks) with
        no client running. Best effort: a network left here is removed by delete_job."""
        by_job: dict[str, list[ContainerInfo]] = {}
        for info in containers:
            name = info.labels.get(self._label("trainjob-name"))
            if name:
                by_job.setdefault(name, []).append(info)
        finished = {
            name: infos
            for name, infos in by_job.items()
            if name not in self._released
            and all(c.state in ("exited", "dead", "stopped") for c in infos)
            and int(json.loads(infos[0].labels.get(self._label("job-meta"), "{}")).get("num_nodes", 1)) > 1
        }
        if not finished:
            return
        try:
            networks = set(self.engine.list_networks({self._label("backend"): self.name}))
        except BackendError:
            return
        for name, infos in finished.items():
            network = self._resource_name(name)
            if network in networks:
                try:
                    self.engine.release_network(network, [c.id for c in infos])
                except BackendError:
                    continue  # delete_job removes it
            self._released.add(name)

    def _record_path(self, name: str) -> str:
        return os.path.join(self._queue().directory, "jobs", f"{name}.json")

    def _write_queued_record(self, request: ContainerJobRequest) -> None:
        """What ``get_job`` shows of a waiting job (no credentials: the request's secrets travel only to the
        runner's standard input)."""
        meta = json.loads(request.containers[0].labels.get(self._label("job-meta"), "{}"))
        steps = [c.labels.get(self._label("step"), c.name) for c in request.containers]
        record = {"name": request.name, "created": datetime.now(timezone.utc).isoformat(), "meta": meta, "steps": steps}
        path = self._record_path(request.name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as fh:
            json.dump(record, fh)
        os.replace(path + ".tmp", path)

    def _queued_record(self, name: str) -> dict[str, Any] | None:
        try:
            with open(self._record_path(name)) as fh:
                record: dict[str, Any] = json.load(fh)
        except (OSError, ValueError):
            return None
        return record

    def _queued_job(self, record: dict[str, Any]) -> TrainJob | None:
        """A job waiting in the queue as ``get_job`` shows it: Suspended with its place; Failed when its start
        failed or its runner died. None when its runner started it (or it was deleted) since ``record`` was read."""
        meta = record["meta"]
        name = record["name"]
        queue = self._queue()
        place = queue.position(name)
        status, message = JobStatus.SUSPENDED, f"queued; at most {self._limit()} jobs run at once (max_running_jobs)"
        if not record.get("error") and place is None:
            # Not in the queue: its runner either started it (it leaves the queue and removes the record under
            # the decision lock) or died (the kernel dropped its ticket's lock). Decide under that lock.
            with queue.decision():
                current = self._queued_record(name)
                if current is None:
                    return None
                record, place = current, queue.position(name)
        if record.get("error"):
            status, message = JobStatus.FAILED, record["error"]
        elif place is not None:
            message = f"queued: {place[0]} of {place[1]} waiting jobs; at most {self._limit()} jobs run at once"
        else:
            status = JobStatus.FAILED
            log = os.path.join(queue.directory, "logs", f"{name}.log")
            message = (
                "the job's queue runner (the detached process that starts it when its turn comes) died while the "
                f"job waited (killed, or the machine restarted; its output: {log}); nothing of the job was "
                f"created. Remove it with delete_job('{name}') and submit it again"
            )
        return TrainJob(
            name=name,
            runtime=Runtime.model_validate(meta["runtime"]) if "runtime" in meta else None,
            steps=[Step(name=step, status=JobStatus.CREATED) for step in record["steps"]],
            num_nodes=int(meta.get("num_nodes", 1)),
            creation_timestamp=datetime.fromisoformat(record["created"]),
            status=status,
            message=message,
            backend=self.name,
            labels=meta.get("labels", {}),
            annotations=meta.get("annotations", {}),
        )

    def _spawn_runner(self, request: ContainerJobRequest, ticket: Ticket) -> None:
        """Start the detached process that waits for the job's turn, then creates and starts it; it inherits the
        ticket's lock (the job keeps its place when this client exits) and reads the request, credentials
        included, from its standard input (never from a file)."""
        data = request.model_dump(mode="json")
        for i, spec in enumerate(request.containers):
            data["containers"][i]["secret_env"] = {k: v.get_secret_value() for k, v in spec.secret_env.items()}
        payload = json.dumps({"config": self.config.model_dump(mode="json"), "request": data})
        logs = os.path.join(self._queue().directory, "logs")
        os.makedirs(logs, exist_ok=True)
        try:
            with open(os.path.join(logs, f"{request.name}.log"), "ab") as log:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "kubeflow_trainer_containers.queue_runner",
                        self.name,
                        f"{ticket.fd}:{ticket.path}",
                    ],
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=(ticket.fd,),
                )
            assert proc.stdin is not None
            proc.stdin.write(payload.encode())
            proc.stdin.close()
            self._runners.append(proc)
        finally:
            os.close(ticket.fd)
        self._runners = [r for r in self._runners if r.poll() is None]

    def run_queued(self, request: ContainerJobRequest, ticket: Ticket) -> bool:
        """In the queue runner: wait for the job's turn, then create and start it (nothing when it was deleted
        meanwhile); a failure to create it is recorded for ``get_job``. True when it created and started it."""
        record_path = self._record_path(request.name)
        started = False

        def start() -> None:  # under the queue's decision lock, which delete_job takes to remove the record
            nonlocal started
            record = self._queued_record(request.name)
            if record is None:
                return  # deleted while it waited
            try:
                self._create_and_start(request)
            except Exception as exc:  # the runner has no one to tell but the job's record
                record["error"] = f"the job could not be started when its turn came: {exc}"
                with open(record_path + ".tmp", "w") as fh:
                    json.dump(record, fh)
                os.replace(record_path + ".tmp", record_path)
                return
            os.unlink(record_path)
            started = True

        wait_for_turn(
            self._queue(),
            ticket,
            self._limit(),
            self._running_jobs,
            start,
            poll=0.5,
            cancelled=lambda: not os.path.exists(record_path),
        )
        return started

    def _ensure_cache_volume(self, name: str, labels: dict[str, str]) -> bool:
        """Create the cache volume unless it exists; True when this call created it."""
        if name in self.engine.list_volumes(labels):
            return False
        try:
            self.engine.create_volume(name, labels)
        except BackendError:
            if name not in self.engine.list_volumes(labels):  # not a concurrent job creating the same cache
                raise
            return False
        return True

    def delete_cache(self, cache: str) -> None:
        """Remove the named initializer cache volume."""
        volume = self._cache_volume(cache)
        if volume not in self.engine.list_volumes(self._cache_labels(cache)):
            raise InvalidRequestError(f"there is no initializer cache {cache!r} on the {self.engine.name} engine")
        self.engine.remove_volume(volume)

    @staticmethod
    def _quietly(func: Any, *args: Any) -> None:
        try:
            func(*args)
        except Exception:  # cleanup after a failure: the original error is what the user must see
            pass

    def _ensure_image(self, image: str, job: str) -> None:
        """Make ``image`` present as ``pull_policy`` says; a pull is shown by a progress display for ``job``
        (layers pulled of N, and megabytes where the engine reports them) while ``train()`` waits for it."""
        policy = self.config.pull_policy
        present = self.engine.image_exists(image)
        if policy == "Never" and not present:
            raise InvalidRequestError(
                f"image {image!r} is not present on the {self.engine.name} engine and pull_policy is Never; "
                f"build or load it first, or use pull_policy='IfNotPresent'"
            )
        if policy == "Always" or (policy == "IfNotPresent" and not present):
            problem = ""
            try:
                self._pull_with_progress(image, job)
            except BackendError as exc:
                problem = str(exc)
            if problem or not self.engine.image_exists(image):  # some engines report a failed pull as success
                raise InvalidRequestError(
                    f"image {image!r} is not present on the {self.engine.name} engine and could not be pulled "
                    f"({problem or 'the pull produced no image'}); build or load it locally, or fix the image name"
                )

    def _pull_with_progress(self, image: str, job: str) -> None:
        from kubeflow_trainer.progress import ProgressDisplay
        from kubeflow_trainer_containers.pullprogress import PullProgress

        pull = PullProgress(image)
        with ProgressDisplay(job) as display:
            # a live bar redraws 4 times a second; plain lines (logs, CI) are written when a layer is done, or
            # every 5 s while bytes move
            every = 0.25 if display.mode == "live" else 5.0
            shown_counts, shown_at = (-1, -1), 0.0

            def report(layer: LayerProgress) -> None:
                nonlocal shown_counts, shown_at
                pull.feed(layer)
                now, counts = time.monotonic(), (pull.done, len(pull.layers))
                if counts != shown_counts or now - shown_at >= every:
                    shown_counts, shown_at = counts, now
                    display.show(pull.preparation())

            display.show(pull.preparation())
            self.engine.pull_image(image, report)
            display.show(pull.preparation())

    # Reading jobs -----------------------------------------------------------------------------------
    def _containers(self, name: str) -> list[ContainerInfo]:
        found = self.engine.list_containers({self._label("trainjob-name"): name})
        if not found:
            raise JobNotFoundError(name, self.name)
        return sorted(found, key=self._rank)

    def _rank(self, info: ContainerInfo) -> tuple[int, str]:
        """Sort key: initializer steps (by name) first, then nodes by rank."""
        step = info.labels.get(self._label("step"), "node-0")
        return (int(step.rsplit("-", 1)[-1]), "") if step.startswith("node-") else (-1, step)

    def _job(self, name: str, containers: list[ContainerInfo]) -> TrainJob:
        meta = json.loads(containers[0].labels.get(self._label("job-meta"), "{}"))
        steps = []
        statuses = []
        first_failure = None
        never = datetime.max.replace(tzinfo=timezone.utc)
        # The root cause: a failed initializer (nodes gated on it exit at about the same time), else the
        # node that failed first.
        for info in sorted(containers, key=lambda c: (self._is_node(c), c.finished_at or never)):
            if _status(info) == JobStatus.FAILED and info.exit_code not in _STOPPED and first_failure is None:
                first_failure = info
        failed_step = first_failure.labels.get(self._label("step")) if first_failure is not None else None
        initializer_failed = first_failure is not None and not self._is_node(first_failure)
        for info in containers:
            status = _status(info)
            if initializer_failed and self._is_node(info) and status not in (JobStatus.COMPLETE, JobStatus.FAILED):
                # A node still waiting at its gate exits the moment it sees the initializer's failure; it never
                # starts the trainer, so it reads as it will end (the job reads Failed now, its steps with it).
                status = JobStatus.FAILED
            statuses.append(status)
            message = None
            if status == JobStatus.FAILED:
                message = exit_reason(info.exit_code, info.oom_killed)
                if info is first_failure and self._is_node(info):
                    message = self._root_cause(info) or message
                if first_failure is not None and first_failure is not info:
                    message = f"stopped because {failed_step} failed"
                    if info.exit_code == GATE_EXIT or info.started_at is None or initializer_failed:
                        message = f"not started because {failed_step} failed"
                elif info is first_failure and not self._is_node(info):
                    message = self._initializer_error(info) or message
            steps.append(
                Step(
                    name=info.labels.get(self._label("step"), info.name),
                    status=status,
                    pod_name=info.name,
                    device="gpu" if meta.get("gpus") else "cpu",
                    device_count=str(meta.get("procs_per_node", 1)),
                    exit_code=info.exit_code if status in (JobStatus.COMPLETE, JobStatus.FAILED) else None,
                    message=message,
                )
            )
        expected = int(meta.get("num_nodes", len(containers)))
        nodes = sum(1 for c in containers if self._is_node(c))
        job_message = None
        if first_failure is None and JobStatus.FAILED in statuses and not any(c.state == "running" for c in containers):
            # Every step was stopped by its watcher and none failed by itself: a peer went silent (see
            # kubeflow_trainer.peerwatch) but exited cleanly meanwhile; still a failed job, never a hanging one.
            status = JobStatus.FAILED
            job_message = "the job's steps stopped each other (a step stopped responding); see the nodes' logs"
        elif first_failure is None and JobStatus.FAILED in statuses:
            # Only nodes that saw an initializer's .failed file have exited; the initializer's own exit is a
            # moment behind (Podman reports it later): the job is still Running until it does.
            status = JobStatus.RUNNING
        elif nodes < expected:  # before the nodes' own failures: the others are stopped because of it
            status = JobStatus.FAILED
            job_message = (
                f"{nodes} of the job's {expected} node containers exist: its submission was interrupted (the "
                "client exited inside train()) or some were removed; delete the job and submit it again"
            )
        elif JobStatus.FAILED in statuses:
            status = JobStatus.FAILED
            assert first_failure is not None
            job_message = f"{failed_step} failed: " + (steps[containers.index(first_failure)].message or "")
        elif all(s == JobStatus.COMPLETE for s in statuses):
            status = JobStatus.COMPLETE

        elif JobStatus.RUNNING in statuses:
            status = JobStatus.RUNNING
        else:
            status = JobStatus.CREATED
        created = meta.get("created")  # jobs created before the request was typed recorded it in the label
        return TrainJob(
            name=name,
            runtime=Runtime.model_validate(meta["runtime"]) if "runtime" in meta else None,
            steps=steps,
            num_nodes=expected,
            creation_timestamp=datetime.fromisoformat(created) if created else min(c.created for c in containers),
            status=status,
            message=job_message,
            backend=self.name,
            labels=meta.get("labels", {}),
            annotations=meta.get("annotations", {}),
        )

    def _is_node(self, info: ContainerInfo) -> bool:
        return info.labels.get(self._label("step"), "node-").startswith("node-")

    def _root_cause(self, info: ContainerInfo) -> str | None:
        """Why a node failed: the user's exception from its torchrun error file (the rank that failed first on
        that node), the requirement the launcher could not install, else the last traceback in its log.
        Remembered per container (a finished container does not change)."""
        if info.id in self._causes:
            return self._causes[info.id]
        cause: str | None = None
        step = info.labels.get(self._label("step"), "node-0")
        if info.exit_code == PIP_FAILED:
            cause = environment_failure("\n".join(self._quiet_lines(info.id)))
            if cause:
                cause = f"installing packages_to_install failed: {cause}"
        if cause is None:
            try:
                failure = parse_error_file(self.engine.get_file(info.id, f"{WORKSPACE}/{ERRORS_DIR}/{step}.json"))
            except BackendError:
                failure = None
            if failure is None:
                failure = from_log(self._quiet_lines(info.id)[-300:])
            cause = failure.describe() if failure else None
        if info.oom_killed:
            cause = exit_reason(info.exit_code, True) + (f"; last error: {cause}" if cause else "")
        self._causes[info.id] = cause
        return cause

    def _quiet_lines(self, container: str) -> list[str]:
        try:
            return list(self._lines(container, follow=False))
        except BackendError:
            return []

    def _initializer_error(self, info: ContainerInfo) -> str | None:
        """The ``error:`` line a failed initializer step printed last (its message for the user)."""
        try:
            lines = list(self._lines(info.id, follow=False))
        except BackendError:
            return None
        errors = [line.split("error: ", 1)[1] for line in lines if "] error: " in line]
        return errors[-1] if errors else None

    def _reconcile(self, job: TrainJob, containers: list[ContainerInfo]) -> None:
        """A failed node fails the job: stop the nodes still running."""
        if job.status != JobStatus.FAILED:
            return
        for info in containers:
            if info.state in ("running", "restarting", "paused", "created"):
                self.engine.stop_container(info.id, 0)

    def get_job(self, name: str) -> TrainJob:
        record = self._queued_record(name)
        if record is not None and not self.engine.list_containers({self._label("trainjob-name"): name}):
            queued = self._queued_job(record)
            if queued is not None:
                return queued  # else its runner started it a moment ago
        containers = self._containers(name)
        job = self._job(name, containers)
        if job.status == JobStatus.FAILED and any(c.state in ("running", "created") for c in containers):
            self._reconcile(job, containers)  # a safety net: the job's watchers stop its steps by themselves
            containers = self._containers(name)
            job = self._job(name, containers)
        if job.status in (JobStatus.COMPLETE, JobStatus.FAILED):
            self._release_networks(containers)
        job.trainer_status = self._trainer_status(containers)
        records = self._restarts(containers)
        for step in job.steps:
            step.restarts = len(records.get(step.name, []))
        job.preparation = self._preparation(job, containers)
        return job

    def _preparation(self, job: TrainJob, containers: list[ContainerInfo]) -> Preparation | None:
        """While the job prepares: nodes started of N, then (with ``packages_to_install``) the launcher's pip
        progress on node-0, read from its log until the launcher reports the packages installed."""
        if job.status not in (JobStatus.CREATED, JobStatus.RUNNING):
            return None
        nodes = [c for c in containers if self._is_node(c)]
        inits = [c for c in containers if not self._is_node(c)]
        running = [c.labels.get(self._label("step"), c.name) for c in inits if c.state == "running"]
        if running:  # the nodes wait at their gate for the initializers
            step = next(c for c in inits if c.state == "running")
            fetched = initializer_progress(self._quiet_lines(step.id))  # bytes and files fetched so far
            if fetched is not None:
                return fetched
            done = sum(1 for c in inits if c.state == "exited" and c.exit_code == 0)
            return Preparation(
                phase="initializing", done=done, total=len(inits), unit="steps", detail=", ".join(running)
            )
        started = sum(1 for c in nodes if c.started_at is not None)
        if job.status == JobStatus.CREATED or started < job.num_nodes:
            return Preparation(phase="starting nodes", done=started, total=job.num_nodes, unit="nodes")
        node0 = next((c for c in nodes if c.labels.get(self._label("step")) == "node-0"), None)
        if node0 is None or node0.id in self._installed:
            return None
        lines = self._quiet_lines(node0.id)
        if not any(line.startswith(LAUNCHER_INSTALLING) for line in lines[:5]):
            self._installed.add(node0.id)  # no packages_to_install: nothing to wait for
            return None
        if any(line.startswith(LAUNCHER_INSTALLED) for line in lines):
            self._installed.add(node0.id)
            return None
        progress = InstallerProgress()
        for line in lines:
            progress.feed(line)
        return progress.preparation()

    def _restarts(self, containers: list[ContainerInfo]) -> dict[str, list[tuple[int, float]]]:
        """torchrun's restarts per node, as the workers recorded them on the job's volume (read only for jobs
        submitted with MaxRestarts)."""
        meta = json.loads(containers[0].labels.get(self._label("job-meta"), "{}"))
        if not meta.get("max_restarts"):
            return {}
        out: dict[str, list[tuple[int, float]]] = {}
        for info in containers:
            step = info.labels.get(self._label("step"), "")
            if not self._is_node(info):
                continue
            try:
                data = self.engine.get_file(info.id, f"{WORKSPACE}/{restarts.RESTARTS_DIR}/{step}")
            except BackendError:
                continue  # the container is gone
            if data:
                out[step] = restarts.parse(data.decode(errors="replace"))
        return out

    def _trainer_status(self, containers: list[ContainerInfo]) -> TrainerStatus | None:
        """What the job last reported with ``update_trainjob_status`` (the status file on its volume)."""
        node0 = next((c for c in containers if c.labels.get(self._label("step")) == "node-0"), None)
        if node0 is None:
            return None
        try:
            return trainer_status_from_json(self.engine.get_file(node0.id, f"{WORKSPACE}/{STATUS_FILE}"))
        except BackendError:
            return None  # removed meanwhile; the status itself is what get_job is about

    def list_jobs(self, runtime: Runtime | None = None) -> list[TrainJob]:
        """Every job of this backend from one list call to the engine (the containers' summaries); only jobs
        with a failed container are read again in full (exit times, OOM kill and the root cause make their
        messages), so the engine calls grow with the failed jobs, not with all of them."""
        by_job: dict[str, list[ContainerInfo]] = {}
        for info in self.engine.list_container_summaries({self._label("backend"): self.name}):
            name = info.labels.get(self._label("trainjob-name"))
            if name:
                by_job.setdefault(name, []).append(info)
        jobs = []
        for name, listed in by_job.items():
            containers = listed
            if any(_status(c) == JobStatus.FAILED for c in listed):
                containers = self.engine.list_containers({self._label("trainjob-name"): name})
                if not containers:
                    continue  # deleted meanwhile
            job = self._job(name, sorted(containers, key=self._rank))
            if runtime is None or (job.runtime is not None and job.runtime.name == runtime.name):
                jobs.append(job)
        try:
            waiting = os.listdir(os.path.join(self._queue().directory, "jobs"))
        except FileNotFoundError:
            waiting = []
        for file in waiting:
            record = self._queued_record(file[: -len(".json")]) if file.endswith(".json") else None
            if record is not None and record["name"] not in by_job:
                queued = self._queued_job(record)
                try:
                    job = queued if queued is not None else self.get_job(record["name"])  # started meanwhile
                except JobNotFoundError:
                    continue  # or deleted
                if runtime is None or (job.runtime is not None and job.runtime.name == runtime.name):
                    jobs.append(job)
        return sorted(jobs, key=lambda j: j.creation_timestamp)

    def get_job_logs(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[str]:
        record = self._queued_record(name)
        if record is not None and not self.engine.list_containers({self._label("trainjob-name"): name}):
            if step not in record["steps"]:
                raise StepNotFoundError(name, step, list(record["steps"]))
            return iter(())  # waiting in the queue: nothing ran yet
        containers = self._containers(name)
        by_step = {c.labels.get(self._label("step"), c.name): c for c in containers}
        if step not in by_step:
            raise StepNotFoundError(name, step, list(by_step))
        return self._lines(by_step[step].id, follow)

    def get_job_log_entries(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[LogEntry]:
        """A step's log lines with the time the engine recorded for each (its ``timestamps`` option)."""
        containers = self._containers(name)
        by_step = {c.labels.get(self._label("step"), c.name): c for c in containers}
        if step not in by_step:
            raise StepNotFoundError(name, step, list(by_step))
        timed = None if follow else self.engine.timed_logs(by_step[step].id)
        if timed is None:
            return (LogEntry(None, line) for line in self._lines(by_step[step].id, follow))
        return self._timed_entries(timed)

    @staticmethod
    def _timed_entries(chunks: Iterator[bytes]) -> Iterator[LogEntry]:
        """Lines of a ``timestamps`` log. The engines stamp each chunk the container wrote: a line written in
        parts (``print`` writes the text, then the newline) carries a stamp before each part, removed here."""
        for line in b"".join(chunks).decode(errors="replace").split("\n"):
            if not line:
                continue
            parts = _STAMP.split(line)  # ["", stamp, text, stamp, text...] when the line starts with a stamp
            if parts[0] or len(parts) < 3:
                yield LogEntry(None, line.rstrip("\r"))
                continue
            yield LogEntry(parse_time(parts[1]), "".join(parts[2::2]).rstrip("\r"))

    def _lines(self, container: str, follow: bool) -> Iterator[str]:
        pending = b""
        for chunk in self.engine.logs(container, follow):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode(errors="replace").rstrip("\r")
        if pending:
            yield pending.decode(errors="replace").rstrip("\r")

    def get_job_events(self, name: str) -> list[Event]:
        record = self._queued_record(name)
        if record is not None and not self.engine.list_containers({self._label("trainjob-name"): name}):
            queued = self._queued_job(record)
            if queued is not None:  # else its runner started it a moment ago
                return [
                    Event(
                        involved_object_kind="TrainJob",
                        involved_object_name=name,
                        reason="Queued" if queued.status == JobStatus.SUSPENDED else "Failed",
                        message=queued.message or "queued",
                        event_time=queued.creation_timestamp,
                    )
                ]
        containers = self._containers(name)
        job = self._job(name, containers)
        step_of = {c.name: c.labels.get(self._label("step"), c.name) for c in containers}
        since = min(job.creation_timestamp, *(c.created for c in containers))
        events = []
        for ev in self.engine.events({self._label("trainjob-name"): name}, since, datetime.now(timezone.utc)):
            detail = f" (exit code {ev.attributes['exitCode']})" if "exitCode" in ev.attributes else ""
            events.append(
                Event(
                    involved_object_kind="Container",
                    involved_object_name=step_of.get(ev.container, ev.container),
                    reason=ev.action.capitalize(),
                    message=f"container {ev.container}: {ev.action}{detail}",
                    event_time=ev.time,
                )
            )
        meta = json.loads(containers[0].labels.get(self._label("job-meta"), "{}"))
        for step, records in self._restarts(containers).items():
            events += restarts.events(step, records, meta.get("max_restarts"))
        return sorted(events, key=lambda e: e.event_time)

    def open_outputs(self, name: str, path: str = "") -> Iterator[OutputFile]:
        """The files of the job's output volume, streamed from the engine's archive of it through the node-0
        container (running or exited; any node when node 0's container is gone): nothing held in memory."""
        containers = self._containers(name)
        nodes = [c for c in containers if self._is_node(c)] or containers
        target = f"{CONTAINER_OUTPUT_DIR}/{path}" if path else CONTAINER_OUTPUT_DIR
        chunks = self.engine.get_archive(nodes[0].id, target)
        if chunks is None:
            return iter(())
        return iter_tar_stream(chunks, path)

    # Deleting jobs ----------------------------------------------------------------------------------
    def delete_job(self, name: str) -> None:
        """Remove the job's containers, network and (with ``auto_remove``) volumes; a job waiting in the queue
        is taken out of it first, under the queue's decision lock, which its runner holds from the moment it
        looks at the job's record until the job's objects exist: either the runner created them already (and
        they are listed and removed here) or it finds the record gone and creates nothing."""
        queued = False
        if self._queued_record(name) is not None:
            with self._queue().decision():
                queued = self._queued_record(name) is not None
                if queued:
                    os.unlink(self._record_path(name))  # its runner sees it gone and leaves the queue
        labels = {self._label("trainjob-name"): name}
        containers = self.engine.list_containers(labels)
        networks = self.engine.list_networks(labels)
        volumes = self.engine.list_volumes(labels)
        if not (containers or networks or volumes or queued):
            raise JobNotFoundError(name, self.name)
        for info in containers:
            self.engine.remove_container(info.id)
        for network in networks:
            self.engine.remove_network(network)
        if self.config.auto_remove:
            for volume in volumes:
                self.engine.remove_volume(volume)

    def close(self) -> None:
        self.engine.close()
