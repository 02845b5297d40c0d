"""The example backend: one child Python process per node, no isolation, state in a directory per job.

The job directory holds the request (``request.json``), the shipped files, and what the runner writes:
``node-<rank>.log``, ``node-<rank>.exit`` and ``stopped`` (see :mod:`kubeflow_trainer_example.runner`), and
the job's output directory ``outputs/`` (``$KUBEFLOW_TRAINER_OUTPUT_DIR``, fetched by ``get_job_outputs``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone

from kubeflow_trainer import (
    AlreadyExistsError,
    Backend,
    Event,
    JobNotFoundError,
    JobStatus,
    Runtime,
    Step,
    StepNotFoundError,
    TrainJob,
)
from kubeflow_trainer.logclock import timed_lines
from kubeflow_trainer.logs import LogEntry
from kubeflow_trainer.outputs import OutputFile, iter_directory
from kubeflow_trainer.plan import JobPlan
from kubeflow_trainer.rootcause import ERROR_FILE_ENV, exit_reason, parse_error_file
from kubeflow_trainer_example.config import SubprocessBackendConfig
from kubeflow_trainer_example.request import NodeProcess, SubprocessRequest

ERROR_FILE_SUFFIX = ".error.json"
OUTPUTS = "outputs"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    """True while the runner process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class SubprocessBackend(Backend[SubprocessRequest]):
    """Runs ``train.py`` with the current interpreter, one child process per node, under a detached runner."""

    name = "subprocess-example"
    request_model = SubprocessRequest
    status_poll_interval = 0.1

    def __init__(self, config: SubprocessBackendConfig) -> None:
        super().__init__(config)
        self.root = config.state_dir
        os.makedirs(self.root, exist_ok=True)

    # The one place where a plan becomes this backend's native request (a dry run returns it unchanged).
    def render(self, plan: JobPlan) -> SubprocessRequest:
        port = _free_port()
        nodes = []
        for rank in range(plan.num_nodes):
            env = plan.node_env(rank, "127.0.0.1", port)
            # One process per node, so torchrun's per-process variables are the node's own.
            env.update(
                KUBEFLOW_TRAINER_OUTPUT_DIR=os.path.join(self.root, plan.name, OUTPUTS),
                RANK=str(rank),
                LOCAL_RANK="0",
                WORLD_SIZE=str(plan.num_nodes),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
            )
            # The generated train.py records an uncaught exception here (torchrun's error-file format).
            env[ERROR_FILE_ENV] = os.path.join(self.root, plan.name, f"node-{rank}{ERROR_FILE_SUFFIX}")
            nodes.append(NodeProcess(rank=rank, argv=[sys.executable, "-u", plan.script or "train.py"], env=env))
        return SubprocessRequest(
            name=plan.name,
            runtime=plan.runtime.name,
            job_dir=os.path.join(self.root, plan.name),
            files=dict(plan.files),
            nodes=nodes,
        )

    def submit(self, request: SubprocessRequest) -> None:
        try:
            os.mkdir(request.job_dir)  # atomic: a taken name fails here, before anything runs
        except FileExistsError:
            raise AlreadyExistsError(request.name, self.name) from None
        os.mkdir(os.path.join(request.job_dir, OUTPUTS))
        for rel, content in request.files.items():
            with open(os.path.join(request.job_dir, rel), "w") as fh:
                fh.write(content)
        with open(os.path.join(request.job_dir, "request.json"), "w") as fh:
            fh.write(request.model_dump_json(indent=2))
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubeflow_trainer_example.runner", request.job_dir],
            cwd=request.job_dir,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        meta = {"pid": proc.pid, "created": datetime.now(timezone.utc).isoformat()}
        with open(os.path.join(request.job_dir, "job.json"), "w") as fh:
            json.dump(meta, fh)

    # Reading state ------------------------------------------------------------------------------------
    def _dir(self, name: str) -> str:
        job_dir = os.path.join(self.root, name)
        if not os.path.isfile(os.path.join(job_dir, "job.json")):
            raise JobNotFoundError(name, self.name)
        return job_dir

    def _request(self, job_dir: str) -> SubprocessRequest:
        with open(os.path.join(job_dir, "request.json"), encoding="utf-8") as fh:
            return SubprocessRequest.model_validate_json(fh.read())

    def _meta(self, job_dir: str) -> dict[str, str | int]:
        with open(os.path.join(job_dir, "job.json")) as fh:
            meta: dict[str, str | int] = json.load(fh)
        return meta

    def _step(self, job_dir: str, node: NodeProcess, runner_alive: bool) -> Step:
        try:
            with open(os.path.join(job_dir, f"{node.step}.exit")) as fh:
                code: int | None = int(fh.read())
        except FileNotFoundError:
            code = None
        message = None
        if code is None:
            status = JobStatus.RUNNING if runner_alive else JobStatus.FAILED
            message = None if runner_alive else "the job's runner process is gone"
        elif code == 0:
            status = JobStatus.COMPLETE
        else:
            status = JobStatus.FAILED
            stopped = os.path.join(job_dir, "stopped")
            if os.path.exists(stopped):
                with open(stopped) as fh:
                    reason = fh.read()
                if not reason.startswith(f"{node.step} "):
                    message = f"stopped: {reason}"
            if message is None:
                message = self._root_cause(job_dir, node.step, code)
        return Step(name=node.step, status=status, pod_name=node.step, exit_code=code, message=message)

    @staticmethod
    def _root_cause(job_dir: str, step: str, code: int) -> str:
        """The user's exception (type, text, file and line) from the node's error file, else what the exit
        code means."""
        try:
            with open(os.path.join(job_dir, f"{step}{ERROR_FILE_SUFFIX}")) as fh:
                failure = parse_error_file(fh.read())
        except OSError:
            failure = None
        return failure.describe() if failure else exit_reason(code)

    def get_job(self, name: str) -> TrainJob:
        job_dir = self._dir(name)
        meta = self._meta(job_dir)
        request = self._request(job_dir)
        alive = _alive(int(meta["pid"]))
        steps = [self._step(job_dir, node, alive) for node in request.nodes]
        statuses = {s.status for s in steps}
        message = None
        if JobStatus.FAILED in statuses:
            status = JobStatus.FAILED
            stopped = os.path.join(job_dir, "stopped")
            if os.path.exists(stopped):  # the root cause, as the runner recorded it
                with open(stopped) as fh:
                    message = fh.read()
            else:
                message = next((s.message for s in steps if s.message), None)
        elif statuses == {JobStatus.COMPLETE}:
            status = JobStatus.COMPLETE
        else:
            status = JobStatus.RUNNING
        return TrainJob(
            name=name,
            runtime=self.get_runtime(request.runtime),
            steps=steps,
            num_nodes=len(request.nodes),
            creation_timestamp=datetime.fromisoformat(str(meta["created"])),
            status=status,
            message=message,
            backend=self.name,
        )

    def list_jobs(self, runtime: Runtime | None = None) -> list[TrainJob]:
        jobs = []
        for name in sorted(os.listdir(self.root)):
            try:
                job = self.get_job(name)
            except (JobNotFoundError, OSError):
                continue  # a directory being created or deleted
            if runtime is None or (job.runtime and job.runtime.name == runtime.name):
                jobs.append(job)
        return sorted(jobs, key=lambda j: j.creation_timestamp)

    def get_job_logs(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[str]:
        job_dir = self._dir(name)  # raise now, not at the first next()
        steps = [node.step for node in self._request(job_dir).nodes]
        if step not in steps:
            raise StepNotFoundError(name, step, steps)
        return self._lines(name, job_dir, step, follow)

    def get_job_log_entries(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[LogEntry]:
        """Log lines with when each was written (the runner's log clock), so merged logs are in time order."""
        if follow:
            return (LogEntry(None, line) for line in self.get_job_logs(name, step, follow))
        job_dir = self._dir(name)
        steps = [node.step for node in self._request(job_dir).nodes]
        if step not in steps:
            raise StepNotFoundError(name, step, steps)
        return (LogEntry(when, text) for when, text in timed_lines(os.path.join(job_dir, f"{step}.log")))

    def _running(self, name: str, step: str) -> bool:
        return any(s.name == step and s.status == JobStatus.RUNNING for s in self.get_job(name).steps)

    def _lines(self, name: str, job_dir: str, step: str, follow: bool) -> Iterator[str]:
        path = os.path.join(job_dir, f"{step}.log")
        while follow and not os.path.exists(path) and self._running(name, step):
            time.sleep(0.05)
        if not os.path.exists(path):
            return
        with open(path, errors="replace", newline="\n") as fh:  # a "\r" (progress bar) does not end a line
            pending = ""
            while True:
                chunk = fh.readline()
                if chunk:
                    pending += chunk
                    if pending.endswith("\n"):
                        yield pending.rstrip("\n")
                        pending = ""
                    continue
                if not follow or not self._running(name, step):
                    rest = pending + fh.read()
                    yield from rest.rstrip("\n").split("\n") if rest else ()
                    return
                time.sleep(0.05)

    def get_job_events(self, name: str) -> list[Event]:
        job = self.get_job(name)
        job_dir = self._dir(name)
        events = [
            Event(
                involved_object_kind="TrainJob",
                involved_object_name=name,
                reason="Created",
                message=f"runner started {job.num_nodes} node process(es)",
                event_time=job.creation_timestamp,
            )
        ]
        for step in job.steps:
            exit_file = os.path.join(job_dir, f"{step.name}.exit")
            if os.path.exists(exit_file):
                events.append(
                    Event(
                        involved_object_kind="Step",
                        involved_object_name=step.name,
                        reason="Exited",
                        message=f"exit code {step.exit_code}",
                        event_time=datetime.fromtimestamp(os.path.getmtime(exit_file), timezone.utc),
                    )
                )
        return sorted(events, key=lambda e: e.event_time)

    def open_outputs(self, name: str, path: str = "") -> Iterator[OutputFile]:
        """The job's output directory stays in its job directory until ``delete_job``: read it in place."""
        return iter_directory(os.path.join(self._dir(name), OUTPUTS), path)

    def delete_job(self, name: str) -> None:
        job_dir = self._dir(name)
        pid = int(self._meta(job_dir)["pid"])
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)  # the runner leads its own session: its nodes are in its group
            except ProcessLookupError:
                pass
        shutil.rmtree(job_dir, ignore_errors=True)
