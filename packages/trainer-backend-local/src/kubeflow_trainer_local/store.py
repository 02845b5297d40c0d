"""The on-disk job record shared by the client side and the job's supervisor process.

Layout of ``<state_dir>/jobs/<name>/`` (mode 0700):

- ``request.json``: the rendered request (what a dry run returns), written once by ``train()``.
- ``state.json``: status, message, supervisor and node process identities, exit codes; replaced atomically.
- ``events.jsonl``: lifecycle events, one JSON object a line, appended.
- ``logs/node-<r>.log``: stdout and stderr of node ``r``; ``logs/environment.log``: installer output.
- ``workspace/``: the job's working directory (``train.py``...).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from typing import Any

TERMINAL = ("Complete", "Failed")


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


class JobRecord:
    """Paths and state of one job directory."""

    def __init__(self, state_dir: str, name: str) -> None:
        self.name = name
        self.dir = os.path.join(jobs_dir(state_dir), name)

    # Paths -------------------------------------------------------------------------------------------
    @property
    def request_path(self) -> str:
        return os.path.join(self.dir, "request.json")

    @property
    def state_path(self) -> str:
        return os.path.join(self.dir, "state.json")

    @property
    def events_path(self) -> str:
        return os.path.join(self.dir, "events.jsonl")

    @property
    def logs_dir(self) -> str:
        return os.path.join(self.dir, "logs")

    @property
    def workspace(self) -> str:
        return os.path.join(self.dir, "workspace")

    def log_path(self, step: str) -> str:
        """Log file of a step (``node-0``, ``environment``...)."""
        return os.path.join(self.logs_dir, f"{step}.log")

    # State -------------------------------------------------------------------------------------------
    def exists(self) -> bool:
        """True once ``train()`` has written the request."""
        return os.path.isfile(self.request_path)

    def request(self) -> dict[str, Any]:
        return dict(read_json(self.request_path))

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

    def add_event(self, kind: str, obj: str, reason: str, message: str) -> None:
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
