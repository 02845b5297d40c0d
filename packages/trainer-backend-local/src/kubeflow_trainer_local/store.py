"""The on-disk job record shared by the client side and the job's supervisor process.

Layout of ``<state_dir>/jobs/<name>/`` (mode 0700):

- ``request.json``: the rendered :class:`~kubeflow_trainer_local.request.LocalJobRequest` (what a dry run
  returns), secrets left out, written once by ``train()`` and loaded by the supervisor.
- ``state.json``: creation time, status, message, node process identities, exit codes; replaced atomically.
- ``events.jsonl``: lifecycle events, one JSON object a line, appended.
- ``logs/node-<r>.log``: stdout and stderr of node ``r``; ``logs/environment.log``: installer output.
- ``workspace/``: the job's working directory (``train.py``...).
- ``outputs/``: the job's output directory (``$KUBEFLOW_TRAINER_OUTPUT_DIR``), read by ``get_job_outputs``.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import ValidationError

from kubeflow_trainer.errors import BackendError
from kubeflow_trainer.initializers import STATUS_DIR
from kubeflow_trainer.types import JobStatus
from kubeflow_trainer_local.request import JobLayout, LocalJobRequest

TERMINAL = (JobStatus.COMPLETE, JobStatus.FAILED)
"""The statuses a job or step never leaves (a tuple: members compare equal to the strings in state files)."""
REQUEST_FILE = "request.json"
STATE_FILE = "state.json"
EVENTS_FILE = "events.jsonl"
LOGS_DIR = "logs"
WORKSPACE_DIR = "workspace"
OUTPUTS_DIR = "outputs"


class Reason(str, Enum):
    """The reasons of the events a job records (``get_job_events``), as Kubernetes names its events."""

    CREATED = JobStatus.CREATED.value
    """The job entered status Created (as the event Kubernetes records)."""
    STARTED = "Started"
    COMPLETED = "Completed"
    FAILED = JobStatus.FAILED.value
    """A step failed (it entered status Failed)."""
    EXITED = "Exited"
    STOPPED = "Stopped"
    CACHE_REUSED = "CacheReused"
    CACHE_STORED = "CacheStored"
    ENVIRONMENT_REUSED = "EnvironmentReused"
    ENVIRONMENT_PREPARED = "EnvironmentPrepared"
    ENVIRONMENT_FAILED = "EnvironmentFailed"
    PORT_REASSIGNED = "PortReassigned"
    SUPERVISOR_LOST = "SupervisorLost"
    SUPERVISOR_ERROR = "SupervisorError"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    INITIALIZER_FAILED = "InitializerFailed"
    NODE_FAILED = "NodeFailed"
    HOT_STARTED = "HotStarted"
    """The nodes were forked by the environment's zygote instead of started with torchrun."""
    HOT_START_FALLBACK = "HotStartFallback"
    """Hot starts are on but could not serve the job: its nodes run with torchrun (the message says why)."""
    PREPARING = "Preparing"
    """A step of the job's preparation, with numbers (:data:`kubeflow_trainer.progress.PREPARING_REASON`)."""
    QUEUED = "Queued"
    ADMITTED = "Admitted"

    def __str__(self) -> str:
        return self.value


def status_of(entry: dict[str, Any]) -> JobStatus:
    """The status recorded in a state entry (the job's or a step's); Created when none is recorded yet."""
    return JobStatus(entry.get("status") or JobStatus.CREATED)


def jobs_dir(state_dir: str) -> str:
    """Directory holding one sub-directory per job."""
    return os.path.join(state_dir, "jobs")


def write_json_atomic(path: str, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace``."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def read_json(path: str) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def now_iso() -> str:
    """Current UTC time, ISO 8601."""
    return datetime.now(timezone.utc).isoformat()


ERROR_FILE_SUFFIX = ".error.json"
"""A node's torchrun error file (``TORCHELASTIC_ERROR_FILE``) is ``<logs_dir>/<step>.error.json``."""


class JobRecord:
    """Paths and state of one job directory."""

    def __init__(self, state_dir: str, name: str) -> None:
        self.name = name
        self.state_dir = state_dir
        self.dir = os.path.join(jobs_dir(state_dir), name)

    def layout(self) -> JobLayout:
        """The job directory's layout as the request states it."""
        return JobLayout(
            state_dir=self.state_dir,
            job_dir=self.dir,
            workspace=self.workspace,
            logs_dir=self.logs_dir,
            status_dir=os.path.join(self.workspace, STATUS_DIR),
            request_file=self.request_path,
            outputs_dir=self.outputs_dir,
        )

    # Paths -------------------------------------------------------------------------------------------
    @property
    def request_path(self) -> str:
        return os.path.join(self.dir, REQUEST_FILE)

    @property
    def state_path(self) -> str:
        return os.path.join(self.dir, STATE_FILE)

    @property
    def events_path(self) -> str:
        return os.path.join(self.dir, EVENTS_FILE)

    @property
    def logs_dir(self) -> str:
        return os.path.join(self.dir, LOGS_DIR)

    @property
    def workspace(self) -> str:
        return os.path.join(self.dir, WORKSPACE_DIR)

    @property
    def outputs_dir(self) -> str:
        return os.path.join(self.dir, OUTPUTS_DIR)

    def log_path(self, step: str) -> str:
        """Log file of a step (``node-0``, ``environment``...)."""
        return os.path.join(self.logs_dir, f"{step}.log")

    def error_path(self, step: str) -> str:
        """torchrun's error file of a node step (the root cause of its failure, when it raised)."""
        return os.path.join(self.logs_dir, f"{step}{ERROR_FILE_SUFFIX}")

    # State -------------------------------------------------------------------------------------------
    def exists(self) -> bool:
        """True once ``train()`` has written the request."""
        return os.path.isfile(self.request_path)

    def request(self) -> LocalJobRequest:
        """The job's request as ``train()`` wrote it (secrets empty)."""
        with open(self.request_path, "rb") as fh:
            text = fh.read()
        try:
            return LocalJobRequest.from_file_json(text)
        except ValidationError as exc:
            raise BackendError(
                f"the record of job {self.name!r} ({self.request_path}) is not a request of this version of "
                f"trainer-backend-local ({exc.error_count()} invalid fields; written by an older version?): "
                f"delete the job with delete_job({self.name!r}), or remove {self.dir}"
            ) from exc

    def write_request(self, request: LocalJobRequest) -> None:
        """Write the request file (secrets left out), through a temporary file and ``os.replace``."""
        tmp = f"{self.request_path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(request.to_file_json())
        os.replace(tmp, self.request_path)

    def state(self) -> dict[str, Any]:
        """The last written state; a record caught mid-write reads as its previous state."""
        for _ in range(20):
            try:
                return dict(read_json(self.state_path))
            except FileNotFoundError:
                raise
            except ValueError:  # pragma: no cover - os.replace makes torn reads impossible; be defensive
                time.sleep(0.01)
        return dict(read_json(self.state_path))

    def write_state(self, state: dict[str, Any]) -> None:
        write_json_atomic(self.state_path, state)

    def add_event(self, kind: str, obj: str, reason: Reason, message: str) -> None:
        """Append a lifecycle event."""
        line = json.dumps({"time": now_iso(), "kind": kind, "object": obj, "reason": reason, "message": message})
        with open(self.events_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def events(self) -> list[dict[str, Any]]:
        try:
            with open(self.events_path, encoding="utf-8") as fh:
                return [json.loads(line) for line in fh if line.strip()]
        except FileNotFoundError:
            return []


def admission_dir(state_dir: str) -> str:
    """The admission queue of the jobs of ``state_dir`` (see :mod:`kubeflow_trainer.admission`)."""
    return os.path.join(state_dir, "admission")
