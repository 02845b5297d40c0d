"""The shared container backend: per-job network and workspace volume, one container per node, labels as
the job registry. Written once against :class:`~kubeflow_trainer_containers.engine.ContainerEngine`;
Docker and Podman supply their engine and config.

:meth:`ContainerBackend.render` is the one place where a job plan becomes container create requests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from pydantic import SecretStr

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
from kubeflow_trainer.jobside import launcher_source, stand_in_files
from kubeflow_trainer.plan import JobPlan
from kubeflow_trainer.rendezvous import DEFAULT_MASTER_PORT
from kubeflow_trainer.resources import parse_quantity
from kubeflow_trainer.trainjob_status import STATUS_FILE, STATUS_FILE_ENV, trainer_status_from_json
from kubeflow_trainer.types import Event, JobStatus, Runtime, Step, TrainerStatus, TrainJob
from kubeflow_trainer_containers.config import ContainerBackendConfig
from kubeflow_trainer_containers.engine import ContainerEngine, ContainerInfo
from kubeflow_trainer_containers.request import (
    ContainerJobRequest,
    ContainerSpec,
    NetworkSpec,
    VolumeSpec,
)

WORKSPACE = "/workspace"
LAUNCHER = ".kft/launch.py"
CACHE_MOUNT = "/kft-cache"
SOURCE_MOUNT = "/kft-source"
GATE_EXIT = 78
"""Exit code of a node whose trainer was not started because an initializer failed."""
GATE = (
    "trap 'exit 143' TERM INT; "
    "for step in $KFT_WAIT_FOR; do "
    f"while [ ! -e {WORKSPACE}/{STATUS_DIR}/$step.ok ]; do "
    f"if [ -e {WORKSPACE}/{STATUS_DIR}/$step.failed ]; then "
    'echo "[kubeflow-trainer] the trainer was not started: $step failed (see its logs)"; '
    f"exit {GATE_EXIT}; fi; sleep 0.1; done; done; "
    'exec "$@"'
)
"""Node containers of a job with initializers start at once but run the trainer only after every
initializer wrote its ``.ok`` file into the shared workspace (``sh`` is the one thing the image needs);
no client has to stay around for the job to go on."""


def _status(info: ContainerInfo) -> JobStatus:
    if info.state in ("created",):
        return JobStatus.CREATED
    if info.state in ("running", "restarting", "paused"):
        return JobStatus.RUNNING
    if info.state in ("exited", "dead", "stopped"):
        return JobStatus.COMPLETE if info.exit_code == 0 else JobStatus.FAILED
    return JobStatus.FAILED if info.state == "removing" else JobStatus.CREATED


class ContainerBackend(Backend[ContainerJobRequest]):
    """Runs each node of a job in its own container on one engine."""

    request_model = ContainerJobRequest

    status_poll_interval = 0.25
    engine_name = "container"

    def __init__(self, config: ContainerBackendConfig, engine: ContainerEngine) -> None:
        super().__init__(config)
        self.config: ContainerBackendConfig = config
        self.engine = engine

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
            "labels": dict(plan.labels),
            "annotations": dict(plan.annotations),
        }
        labels[self._label("job-meta")] = json.dumps(meta, sort_keys=True)
        resource = self._resource_name(plan.name)
        master = self.engine.master_address(f"{plan.name}-node-0")
        files = dict(plan.files)
        if plan.trainer_kind == "custom" and plan.script is not None:
            files.update(stand_in_files(os.path.dirname(plan.script)))
        launcher = plan.trainer_kind == "custom" and bool(plan.packages_to_install)
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
        for step in plan.node_steps():
            rank = step.rank or 0
            env = {
                "PYTHONUNBUFFERED": "1",
                **plan.node_env(rank, master, DEFAULT_MASTER_PORT),
                STATUS_FILE_ENV: f"{WORKSPACE}/{STATUS_FILE}",
            }
            if plan.trainer_kind == "custom":
                command = plan.node_command(rank, master, DEFAULT_MASTER_PORT, WORKSPACE)
                if launcher:
                    env["KFT_PACKAGES"] = json.dumps(plan.packages_to_install)
                    env["KFT_PIP_ARGS"] = json.dumps(pip_args)
                    command = ["python3", f"{WORKSPACE}/{LAUNCHER}", *command]
            else:
                command = [*(plan.container_command or []), *(plan.container_args or [])]
            if init_steps:
                env.update(node_env(list(init_steps), WORKSPACE))
                env["KFT_WAIT_FOR"] = " ".join(i.step for i in init_steps)
                command = ["/bin/sh", "-c", GATE, "kft-gate", *command]
            container_name = f"{plan.name}-{step.name}"
            containers.append(
                ContainerSpec(
                    name=container_name,
                    image=image,
                    command=command,
                    labels={**labels, self._label("step"): step.name},
                    env=env,
                    network=resource,
                    hostname=container_name,
                    volumes={resource: WORKSPACE},
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
            network=NetworkSpec(name=resource, labels=self._job_labels(plan.name)),
            volume=VolumeSpec(name=resource, labels=self._job_labels(plan.name)),
            files=files,
            cache_volumes=[
                VolumeSpec(name=self._cache_volume(i.cache), labels=self._cache_labels(i.cache))
                for i in init_steps
                if i.cache
            ],
            containers=containers,
            engine_requests=[self.engine.native_request(c) for c in containers],
        )

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
            command=["python3", f"{WORKSPACE}/{RUNNER_FILE}", f"{WORKSPACE}/{spec_file}"],
            labels={**labels, self._label("step"): init.step},
            env={"PYTHONUNBUFFERED": "1"},
            secret_env={key: SecretStr(value) for key, value in init.secrets.items()},
            network=resource,
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

        Raises AlreadyExistsError when the engine has a job of that name; on any failure removes what it
        created (cache volumes that existed before are kept)."""
        self.engine.ping()
        name = request.name
        if self.engine.list_containers({self._label("trainjob-name"): name}) or self.engine.list_networks(
            {self._label("trainjob-name"): name}
        ):
            raise AlreadyExistsError(name, self.name)
        self._ensure_image(request.image)
        created: list[str] = []
        new_caches: list[str] = []
        network = volume = False
        try:
            self.engine.create_volume(request.volume.name, dict(request.volume.labels))
            volume = True
            self.engine.create_network(request.network.name, dict(request.network.labels))
            network = True
            for cache in request.cache_volumes:
                if self._ensure_cache_volume(cache.name, dict(cache.labels)):
                    new_caches.append(cache.name)
            for spec in request.containers:
                created.append(self.engine.create_container(spec))
            self.engine.put_files(created[0], WORKSPACE, dict(request.files))
            for container in created:
                self.engine.start_container(container)
        except BaseException:
            for container in created:
                self._quietly(self.engine.remove_container, container)
            if network:
                self._quietly(self.engine.remove_network, request.network.name)
            if volume:
                self._quietly(self.engine.remove_volume, request.volume.name)
            for cache_volume in new_caches:  # still empty: nothing ran
                self._quietly(self.engine.remove_volume, cache_volume)
            raise

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

    def _ensure_image(self, image: str) -> None:
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
                self.engine.pull_image(image)
            except BackendError as exc:
                problem = str(exc)
            if problem or not self.engine.image_exists(image):  # some engines report a failed pull as success
                raise InvalidRequestError(
                    f"image {image!r} is not present on the {self.engine.name} engine and could not be pulled "
                    f"({problem or 'the pull produced no image'}); build or load it locally, or fix the image name"
                )

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
            if _status(info) == JobStatus.FAILED and info.exit_code != GATE_EXIT and first_failure is None:
                first_failure = info
        failed_step = first_failure.labels.get(self._label("step")) if first_failure is not None else None
        for info in containers:
            status = _status(info)
            statuses.append(status)
            message = None
            if status == JobStatus.FAILED:
                message = f"exited with code {info.exit_code}"
                if first_failure is not None and first_failure is not info:
                    message = f"stopped because {failed_step} failed"
                    if info.exit_code == GATE_EXIT or info.started_at is None:
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
        if first_failure is None and JobStatus.FAILED in statuses:
            # Only nodes that saw an initializer's .failed file have exited; the initializer's own exit is a
            # moment behind (Podman reports it later): the job is still Running until it does.
            status = JobStatus.RUNNING
        elif nodes < expected:  # before the nodes' own failures: the others are stopped because of it
            status = JobStatus.FAILED
            job_message = f"{expected - nodes} node container(s) of the job were removed"
        elif JobStatus.FAILED in statuses:
            status = JobStatus.FAILED
            assert first_failure is not None
            job_message = f"{failed_step} exited with code {first_failure.exit_code}"
            if not self._is_node(first_failure):
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
        containers = self._containers(name)
        job = self._job(name, containers)
        if job.status == JobStatus.FAILED and any(c.state in ("running", "created") for c in containers):
            self._reconcile(job, containers)
            containers = self._containers(name)
            job = self._job(name, containers)
        job.trainer_status = self._trainer_status(containers)
        return job

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
        by_job: dict[str, list[ContainerInfo]] = {}
        for info in self.engine.list_containers({self._label("backend"): self.name}):
            name = info.labels.get(self._label("trainjob-name"))
            if name:
                by_job.setdefault(name, []).append(info)
        jobs = []
        for name, containers in by_job.items():
            job = self._job(name, sorted(containers, key=self._rank))
            if runtime is None or (job.runtime is not None and job.runtime.name == runtime.name):
                jobs.append(job)
        return sorted(jobs, key=lambda j: j.creation_timestamp)

    def get_job_logs(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[str]:
        containers = self._containers(name)
        by_step = {c.labels.get(self._label("step"), c.name): c for c in containers}
        if step not in by_step:
            raise StepNotFoundError(name, step, list(by_step))
        return self._lines(by_step[step].id, follow)

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
        return sorted(events, key=lambda e: e.event_time)

    # Deleting jobs ----------------------------------------------------------------------------------
    def delete_job(self, name: str) -> None:
        labels = {self._label("trainjob-name"): name}
        containers = self.engine.list_containers(labels)
        networks = self.engine.list_networks(labels)
        volumes = self.engine.list_volumes(labels)
        if not (containers or networks or volumes):
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
