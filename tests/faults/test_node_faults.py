"""A node dies: SIGKILLed, or killed by the kernel at its memory limit. The job fails naming the node, its
peers stop without any client running, a bystander job is not disturbed, nothing is left behind."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import faultjobs as jobs
import pytest
from conftest import JOB_LABEL, cli, wait_for

from kubeflow_trainer import CustomTrainer, JobFailedError, Name, TrainerClient, UnsupportedFeatureError

BACKENDS = ["local", "docker", "podman"]
PEERS_STOP_WITHIN = 20.0
"""Seconds for a failed job's other nodes to stop with no client call (the issue asks for a few seconds; the
bound leaves room for a loaded 2-core machine; the measured figure is printed in the row)."""


def start_bystander(client: TrainerClient, scope) -> str:  # type: ignore[no-untyped-def]
    return client.train(
        trainer=CustomTrainer(func=jobs.sleeper, func_args={"seconds": 12}), options=[Name(scope.job_name("by"))]
    )


def bystander_ok(client: TrainerClient, name: str) -> str:
    job = client.wait_for_job_status(name, timeout=300, polling_interval=0.5)
    assert job.status == "Complete" and "DONE" in list(client.get_job_logs(name))
    return "Complete"


def kill_node(backend: str, client: TrainerClient, name: str, step: str) -> None:
    """SIGKILL the node's process (local: its torchrun agent; engines: the container's init process)."""
    if backend == "local":
        state = json.loads((Path(client.backend.config.state_dir) / "jobs" / name / "state.json").read_text())
        os.kill(int(state["nodes"][step]["pid"]), signal.SIGKILL)
        return
    (container,) = cli(
        backend,
        "ps",
        "--filter",
        f"label={JOB_LABEL}={name}",
        "--filter",
        f"label=trainer.kubeflow.org/step={step}",
        "--format",
        "{{.Names}}",
    ).split()
    cli(backend, "kill", "--signal", "KILL", container)


@pytest.mark.parametrize("backend", BACKENDS)
def test_node_sigkill(backend, fault):
    scope, client, row = fault("node SIGKILL", backend)
    bystander = start_bystander(client, scope)
    name = client.train(
        trainer=CustomTrainer(func=jobs.sleeper, func_args={"seconds": 300}, num_nodes=2),
        options=[Name(scope.job_name("kill"))],
    )
    wait_for(lambda: all(s.status == "Running" for s in client.get_job(name).steps), 300, "both nodes running")
    wait_for(lambda: any(x.startswith("UP") for x in client.get_job_logs(name, step="node-1")), 120, "node-1 UP")
    kill_node(backend, client, name, "node-1")
    # No client call from here until the job's processes/containers are gone: the backend polices itself.
    stopped_in = scope.wait_until_stopped(PEERS_STOP_WITHIN + 5, name)
    still = scope.running(name)
    with pytest.raises(JobFailedError) as failed:
        client.wait_for_job_status(name, timeout=60, polling_interval=0.5)
    job = failed.value.job
    assert job.status == "Failed" and "node-1" in (job.message or ""), job.message
    stopped = f"stopped {stopped_in:.1f}s after the kill" if not still else f"still running {stopped_in:.0f}s later"
    row.outcome = f"Failed: {job.message}; peers {stopped} with no client call"
    row.bystander = bystander_ok(client, bystander)
    assert not still and stopped_in <= PEERS_STOP_WITHIN, f"{still} of the job still running {stopped_in:.0f}s later"


@pytest.mark.parametrize("backend", BACKENDS)
def test_node_oom_kill(backend, fault):
    scope, client, row = fault("node OOM-kill (memory limit)", backend)
    trainer = CustomTrainer(func=jobs.hog, func_args={"megabytes": 1024}, resources_per_node={"memory": "256Mi"})
    if backend == "local":  # no memory limits: refused before anything exists (the capability is not declared)
        with pytest.raises(UnsupportedFeatureError, match="memory-limit") as refused:
            client.train(trainer=trainer, options=[Name(scope.job_name("oom"))])
        row.outcome = f"refused: {type(refused.value).__name__} ({refused.value.missing[0]})"
        row.bystander = "n/a (nothing started)"
        return
    bystander = start_bystander(client, scope)
    name = client.train(trainer=trainer, options=[Name(scope.job_name("oom"))])
    with pytest.raises(JobFailedError) as failed:
        client.wait_for_job_status(name, timeout=300, polling_interval=0.5)
    job = failed.value.job
    message = job.message or ""
    assert job.status == "Failed" and "node-0" in message, message
    # The kernel's OOM killer SIGKILLs the process: exit 137, or a message saying memory ran out.
    assert "137" in message or "memory" in message.lower(), message
    assert not any(x.startswith("ALLOCATED") for x in client.get_job_logs(name))
    row.outcome = f"Failed: {message}"
    row.bystander = bystander_ok(client, bystander)
