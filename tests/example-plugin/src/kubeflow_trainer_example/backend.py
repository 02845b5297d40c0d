"""The example backend: one child Python process per job, no isolation, state in a directory per job."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from kubeflow_trainer import (
    AlreadyExistsError,
    Backend,
    Event,
    JobNotFoundError,
    Runtime,
    Step,
    StepNotFoundError,
    TrainJob,
)
from kubeflow_trainer.plan import JobPlan
from kubeflow_trainer_example.config import SubprocessBackendConfig


class SubprocessBackend(Backend):
    """Runs ``train.py`` with the current interpreter in a detached child process."""

    status_poll_interval = 0.1

    def __init__(self, config: SubprocessBackendConfig) -> None:
        super().__init__(config)
        self.root = config.state_dir
        os.makedirs(self.root, exist_ok=True)

    # The one place where a plan becomes this backend's native request.
    def render(self, plan: JobPlan) -> dict[str, Any]:
        job_dir = os.path.join(self.root, plan.name)
        return {
            "argv": [sys.executable, "-m", "kubeflow_trainer_example.runner", job_dir],
            "cwd": job_dir,
            "env": {**os.environ, **plan.node_env(0, "127.0.0.1", 29500)},
            "files": plan.files,
        }

    def submit(self, plan: JobPlan) -> None:
        request = self.render(plan)
        job_dir = request["cwd"]
        try:
            os.mkdir(job_dir)  # atomic: a taken name fails here, before anything runs
        except FileExistsError:
            raise AlreadyExistsError(plan.name, self.name) from None
        for rel, content in request["files"].items():
            with open(os.path.join(job_dir, rel), "w") as fh:
                fh.write(content)
        proc = subprocess.Popen(
            request["argv"],
            cwd=job_dir,
            env=request["env"],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        meta = {
            "name": plan.name,
            "runtime": plan.runtime.name,
            "pid": proc.pid,
            "created": datetime.now(timezone.utc).isoformat(),
        }
        with open(os.path.join(job_dir, "job.json"), "w") as fh:
            json.dump(meta, fh)

    # Reading state ------------------------------------------------------------------------------------
    def _dir(self, name: str) -> str:
        job_dir = os.path.join(self.root, name)
        if not os.path.isfile(os.path.join(job_dir, "job.json")):
            raise JobNotFoundError(name, self.name)
        return job_dir

    def _status(self, job_dir: str) -> tuple[str, int | None]:
        try:
            with open(os.path.join(job_dir, "exit_code")) as fh:
                code = int(fh.read())
            return ("Complete" if code == 0 else "Failed"), code
        except FileNotFoundError:
            return "Running", None

    def get_job(self, name: str) -> TrainJob:
        job_dir = self._dir(name)
        with open(os.path.join(job_dir, "job.json")) as fh:
            meta = json.load(fh)
        status, code = self._status(job_dir)
        return TrainJob(
            name=name,
            runtime=self.get_runtime(meta["runtime"]),
            steps=[Step(name="node-0", status=status, pod_name=str(meta["pid"]), exit_code=code)],
            num_nodes=1,
            creation_timestamp=datetime.fromisoformat(meta["created"]),
            status=status,
            backend=self.name,
        )

    def list_jobs(self, runtime: Runtime | None = None) -> list[TrainJob]:
        jobs = []
        for name in sorted(os.listdir(self.root)):
            try:
                job = self.get_job(name)
            except JobNotFoundError:
                continue  # a directory being created or deleted
            if runtime is None or (job.runtime and job.runtime.name == runtime.name):
                jobs.append(job)
        return sorted(jobs, key=lambda j: j.creation_timestamp)

    def get_job_logs(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[str]:
        job_dir = self._dir(name)  # raise now, not at the first next()
        if step != "node-0":
            raise StepNotFoundError(name, step, ["node-0"])
        return self._lines(job_dir, follow)

    def _lines(self, job_dir: str, follow: bool) -> Iterator[str]:
        path = os.path.join(job_dir, "output.log")
        while follow and not os.path.exists(path) and self._status(job_dir)[0] == "Running":
            time.sleep(0.05)
        if not os.path.exists(path):
            return
        with open(path, errors="replace") as fh:
            pending = ""
            while True:
                chunk = fh.readline()
                if chunk:
                    pending += chunk
                    if pending.endswith("\n"):
                        yield pending.rstrip("\n")
                        pending = ""
                    continue
                if not follow or self._status(job_dir)[0] != "Running":
                    rest = pending + fh.read()
                    yield from (line for line in rest.splitlines())
                    return
                time.sleep(0.05)

    def get_job_events(self, name: str) -> list[Event]:
        job = self.get_job(name)
        events = [
            Event(
                involved_object_kind="TrainJob",
                involved_object_name=name,
                reason="Created",
                message="child process started",
                event_time=job.creation_timestamp,
            )
        ]
        exit_file = os.path.join(self._dir(name), "exit_code")
        if os.path.exists(exit_file):
            when = datetime.fromtimestamp(os.path.getmtime(exit_file), timezone.utc)
            events.append(
                Event(
                    involved_object_kind="Step",
                    involved_object_name="node-0",
                    reason="Exited",
                    message=f"exit code {job.steps[0].exit_code}",
                    event_time=when,
                )
            )
        return events

    def delete_job(self, name: str) -> None:
        job_dir = self._dir(name)
        with open(os.path.join(job_dir, "job.json")) as fh:
            pid = json.load(fh)["pid"]
        if self._status(job_dir)[0] == "Running":
            try:
                os.killpg(pid, signal.SIGKILL)  # the runner leads its own session: kill the whole group
            except ProcessLookupError:
                pass
        shutil.rmtree(job_dir, ignore_errors=True)
