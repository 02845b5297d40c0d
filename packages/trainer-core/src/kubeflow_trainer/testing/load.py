"""Admission under load, as the local and container backends' tests (and benchmarks/admission.py) check it:
many one-node jobs submitted together, a sampler counting how many run at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubeflow_trainer import CustomTrainer, CustomTrainerContainer, Name, TrainerClient
from kubeflow_trainer.plan import random_job_name
from kubeflow_trainer.testing.processes import ConcurrencySampler


@dataclass
class BurstResult:
    """What :func:`burst` measured."""

    names: list[str]
    """The jobs, in submission order."""
    submit_seconds: float
    wall_seconds: float
    """From the first submission until every job ended."""
    peak: int
    """The most jobs seen running at once."""
    samples: int
    statuses: dict[str, str]
    first_seen: dict[str, float] = field(default_factory=dict)
    suspended_seen: int = 0
    """How many jobs read Suspended at the end of the submissions."""

    def start_order_kept(self) -> bool:
        """Whether the jobs were first seen running in submission order (ties allowed)."""
        times = [self.first_seen[n] for n in self.names if n in self.first_seen]
        return len(times) == len(self.names) and times == sorted(times)


def burst(
    client: TrainerClient,
    trainer: CustomTrainer | CustomTrainerContainer,
    count: int,
    timeout: float,
    counter: Callable[[set[str]], set[str]] | None = None,
    prefix: str = "burst",
    names_out: list[str] | None = None,
    delete_finished: bool = False,
) -> BurstResult:
    """Submit ``count`` copies of ``trainer`` at once (one client, no waiting in between), sample how many run
    at once until all ended, and return the figures. Deleting the jobs is the caller's business (their names
    are appended to ``names_out`` before they are submitted). ``delete_finished`` deletes each job once it has
    ended (a Docker engine holds about 30 job networks at most: finished jobs' networks would exhaust them)."""
    tag = random_job_name()[:5]
    names = [f"{prefix}-{tag}-{i:03d}" for i in range(count)]
    if names_out is not None:
        names_out.extend(names)
    sampler = ConcurrencySampler(set(names), counter=counter)
    with sampler:
        began = time.monotonic()
        for name in names:
            client.train(trainer=trainer, options=[Name(name=name)])
        submitted = time.monotonic() - began
        suspended = sum(1 for j in client.list_jobs() if j.name in sampler.jobs and j.status == "Suspended")
        deadline = began + timeout
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            for job in client.list_jobs():
                if job.name in sampler.jobs and statuses.get(job.name) not in ("Complete", "Failed"):
                    statuses[job.name] = str(job.status)
                    if delete_finished and job.status in ("Complete", "Failed"):
                        client.delete_job(job.name)
            if len(statuses) == count and all(s in ("Complete", "Failed") for s in statuses.values()):
                break
            time.sleep(0.5)
        wall = time.monotonic() - began
    return BurstResult(
        names=names,
        submit_seconds=submitted,
        wall_seconds=wall,
        peak=sampler.peak,
        samples=sampler.samples,
        statuses=statuses,
        first_seen=dict(sampler.first_seen),
        suspended_seen=suspended,
    )
