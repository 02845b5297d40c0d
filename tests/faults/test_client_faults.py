"""The client side fails: killed in the middle of ``train()``, or two clients submit the same name at the same
instant. The local supervisor is SIGKILLed (local only: the other backends have no supervisor)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import faultjobs as jobs
import pytest
from conftest import marked_processes, wait_for

from kubeflow_trainer import CustomTrainer, Name, TrainerClient

BACKENDS = ["local", "docker", "podman"]
CLIENT = Path(__file__).with_name("clientproc.py")


def client_process(config, tmp_path: Path, *args: str) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    spec = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.json"
    cls = type(config)
    spec.write_text(json.dumps({"class": f"{cls.__module__}.{cls.__name__}", "config": config.model_dump()}))
    return subprocess.Popen(
        [sys.executable, str(CLIENT), args[0], str(spec), *args[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def bystander(client: TrainerClient, scope) -> str:  # type: ignore[no-untyped-def]
    return client.train(
        trainer=CustomTrainer(func=jobs.sleeper, func_args={"seconds": 8}), options=[Name(scope.job_name("by"))]
    )


def bystander_ok(client: TrainerClient, name: str) -> str:
    job = client.wait_for_job_status(name, timeout=300, polling_interval=0.5)
    assert job.status == "Complete" and "DONE" in list(client.get_job_logs(name))
    return "Complete"


@pytest.mark.parametrize("backend", BACKENDS)
def test_client_killed_in_the_middle_of_train(backend, fault, tmp_path):
    scope, client, row = fault("client SIGKILLed inside train()", backend)
    other = bystander(client, scope)
    name = scope.job_name("half")
    proc = client_process(scope.config, tmp_path, "train-then-hang", name)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("POINT"), line + proc.communicate()[1]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The half-made job is visible (so it can be found and deleted) and does not pretend to run.
    wait_for(lambda: name in {j.name for j in client.list_jobs()}, 30, "the half-made job listed")
    job = client.get_job(name)
    assert job.status == "Failed", (job.status, job.message)
    assert job.message, "the job must say why it failed"
    row.outcome = f"{job.status}: {job.message} (killed at: {line.split(' ', 1)[1].strip()})"
    row.bystander = bystander_ok(client, other)


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_name_from_two_processes_at_once(backend, fault, tmp_path):
    scope, client, row = fault("same job name from 2 processes at once", backend)
    other = bystander(client, scope)
    name = scope.job_name("race")
    start_at = f"{time.time() + 4:.3f}"  # both clients are imported and waiting by then
    procs = [client_process(scope.config, tmp_path, "race", name, start_at) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    lines = sorted(out.strip().splitlines()[-1] if out.strip() else f"(no output) {err[-500:]}" for out, err in results)
    assert [x.split()[0] for x in lines] == ["AlreadyExistsError", "OK"], lines
    assert f"TrainJob '{name}' already exists" in lines[0]
    job = client.wait_for_job_status(name, timeout=300, polling_interval=0.5)
    assert job.status == "Complete" and len(job.steps) == 1
    winner = lines[1].split()[1]
    assert f"DONE {winner}" in list(client.get_job_logs(name)), "the job that runs is the winner's"
    row.outcome = "one Complete, the other AlreadyExistsError"
    row.bystander = bystander_ok(client, other)


def test_local_supervisor_sigkilled(fault):
    scope, client, row = fault("local supervisor SIGKILLed", "local")
    other = bystander(client, scope)
    name = client.train(
        trainer=CustomTrainer(func=jobs.sleeper, func_args={"seconds": 300}, num_nodes=2),
        options=[Name(scope.job_name("sup"))],
    )
    client.wait_for_job_status(name, {"Running"}, timeout=300, polling_interval=0.2)
    record = Path(scope.config.state_dir) / "jobs" / name
    supervisor = json.loads((record / "supervisor.json").read_text())["pid"]
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: client.get_job(name).status == "Failed", 30, "the job Failed")
    job = client.get_job(name)
    assert "supervisor" in (job.message or ""), job.message
    stopped_in = scope.wait_until_stopped(20, name)
    assert not scope.running(name), [p.cmdline() for p in marked_processes(scope.marker)]
    row.outcome = f"Failed: {job.message}; nodes stopped {stopped_in:.1f}s later"
    row.bystander = bystander_ok(client, other)


@pytest.mark.parametrize("backend", ["docker", "podman"])
def test_queue_runner_sigkilled_while_its_job_waits(backend, fault, tmp_path):
    """A queued container job's detached runner is SIGKILLed: the job reads Failed saying its runner died and
    what to do (never Suspended forever), nothing of it is ever created, the running job is not disturbed."""
    scope, client, row = fault(
        "queue runner SIGKILLed while its job waits", backend, max_running_jobs=1, queue_dir=str(tmp_path / "queue")
    )
    other = bystander(client, scope)
    client.wait_for_job_status(other, {"Running"}, timeout=120, polling_interval=0.2)
    name = client.train(
        trainer=CustomTrainer(func=jobs.quick, func_args={"tag": "x"}), options=[Name(scope.job_name("q"))]
    )
    assert client.get_job(name).status == "Suspended"
    runners = [
        p
        for p in marked_processes(scope.marker)
        if "kubeflow_trainer_containers.queue_runner" in p.cmdline() and any(name in a for a in p.cmdline())
    ]
    assert len(runners) == 1, [p.cmdline() for p in marked_processes(scope.marker)]
    runners[0].kill()
    runners[0].wait(10)
    job = client.get_job(name)
    assert job.status == "Failed", (job.status, job.message)
    assert "queue runner" in (job.message or "") and f"delete_job('{name}')" in job.message, job.message
    row.bystander = bystander_ok(client, other)
    time.sleep(2)  # a live runner would have started the job by now
    job = client.get_job(name)
    assert job.status == "Failed" and scope.counts()["containers"] == 1, (job.status, scope.counts())  # the bystander's
    row.outcome = f"Failed: {job.message.split(' (killed', 1)[0]}; nothing of it created"
