"""The example backend's native request: what one job runs, as a typed, serialisable model.

``SubprocessBackend.render`` builds it from the job plan (that is what a dry run shows), ``submit`` writes it
to the job's directory as ``request.json`` and starts the runner, and the runner loads exactly that file.
So what a dry run shows is what runs.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class NodeProcess(BaseModel):
    """One node of the job: one Python process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rank: int
    argv: list[str]
    env: dict[str, str]
    """Variables the job sets on top of the environment the job was submitted from (never a copy of that
    environment: the request is written to disk, the caller's secrets must not be)."""

    @property
    def step(self) -> str:
        """The step name of this node."""
        return f"node-{self.rank}"


class SubprocessRequest(BaseModel):
    """Everything one job runs: its directory, the files written there and one process per node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    runtime: str
    job_dir: str
    files: dict[str, str]
    """Workspace files (relative path -> content), e.g. the shipped ``train.py``."""
    nodes: list[NodeProcess]
    stop_grace_seconds: float = 5.0
    """When a node fails, the others get SIGTERM, then SIGKILL after this many seconds."""
