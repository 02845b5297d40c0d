"""Kubernetes: the API server is restarted while jobs exist (the test control plane's kube-apiserver is
stopped as the kubelet stops a static pod, SIGTERM then SIGKILL after a grace period, and started again with the
same command line; etcd and the controllers keep running). While it is down the client raises the SDK's typed
BackendUnavailableError (reads and train() alike, creating nothing); afterwards the TrainJobs submitted before
are still there and run to their end, and a new train() works. Secrets are counted before and after (the jobs
carry no credentials: 0 -> 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import faultjobs as jobs
import pytest

from kubeflow_trainer import CustomTrainer, Name, TrainerClient
from kubeflow_trainer.errors import BackendUnavailableError

STOP_GRACE = 30.0
"""Seconds the stopped kube-apiserver has between SIGTERM and SIGKILL: the kubelet's default grace period for a
static pod. Its own graceful shutdown waits up to 60 s (``ShutdownTimeout``, the request timeout) for open
connections to go idle, which a loaded 2-core machine reached (still running 60 s after SIGTERM in one CI run)."""


def stop_apiserver(plane: dict[str, Any]) -> tuple[list[bytes], dict[bytes, bytes], str]:
    """Stop the plane's kube-apiserver as the kubelet stops a static pod (its pid from up.sh's pid file): SIGTERM,
    SIGKILL after :data:`STOP_GRACE` seconds; wait for it to exit. Its command line, environment and how it
    stopped."""
    pid = int((Path(plane["run_dir"]) / "pids" / "kube-apiserver.pid").read_text())
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(e.split(b"=", 1) for e in environ if b"=" in e)
    assert command and command[0].endswith(b"kube-apiserver"), command
    os.kill(pid, signal.SIGTERM)
    how = "SIGTERM"
    deadline = time.monotonic() + STOP_GRACE
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        how = f"SIGTERM, SIGKILL after {STOP_GRACE:.0f} s"
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not alive(pid), f"kube-apiserver did not exit after {how}"
    return command, env, how


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (an exited process whose parent has not reaped it yet is a zombie: not running)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def start_apiserver(plane: dict[str, Any], command: list[bytes], env: dict[bytes, bytes]) -> None:
    """Start it again as up.sh does: its own session, not this process's child, same command line, environment
    and log, pid file updated (so down.sh stops the new one)."""
    run_dir = Path(plane["run_dir"])
    pid_file = run_dir / "pids" / "kube-apiserver.pid"
    pid_file.unlink()
    with open(run_dir / "logs" / "kube-apiserver.log", "ab") as log:
        subprocess.run(
            ["setsid", "-f", "bash", "-c", 'echo $$ > "$0"; exec "$@"', str(pid_file), *command],
            cwd=run_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            check=True,
        )
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pid_file.exists(), "the restarted kube-apiserver wrote no pid file"


def reachable_again(client: TrainerClient, name: str, timeout: float) -> float:
    """Seconds until a read works again; only BackendUnavailableError is expected meanwhile."""
    start = time.monotonic()
    while True:
        try:
            client.get_job(name)
            return time.monotonic() - start
        except BackendUnavailableError:
            if time.monotonic() - start > timeout:
                pytest.fail(f"the API server did not answer within {timeout:.0f} s of its restart")
            time.sleep(0.5)


def test_api_server_restarted(fault, k8s_plane, k8s_settings):
    scope, client, row = fault("API server restarted", "kubernetes", **k8s_settings)
    trainer = CustomTrainer(func=jobs.quick, func_args={"tag": "k8s"}, num_nodes=2)
    other = client.train(trainer=trainer, options=[Name(scope.job_name("by"))])
    name = client.train(trainer=trainer, options=[Name(scope.job_name("kept"))])
    command, env, how = stop_apiserver(k8s_plane)
    try:
        with pytest.raises(BackendUnavailableError, match="cannot reach the Kubernetes API server") as down:
            client.get_job(name)
        with pytest.raises(BackendUnavailableError):
            client.list_jobs()
        refused = scope.job_name("refused")
        with pytest.raises(BackendUnavailableError):
            client.train(trainer=trainer, options=[Name(refused)])
    finally:
        start_apiserver(k8s_plane, command, env)
    back_in = reachable_again(client, name, 120)
    assert refused not in {j.name for j in client.list_jobs()}, "train() while the API server was down created a job"
    job = client.wait_for_job_status(name, timeout=180, polling_interval=0.5)
    assert job.status == "Complete", (job.status, job.message)
    after = client.train(trainer=trainer, options=[Name(scope.job_name("after"))])
    assert client.wait_for_job_status(after, timeout=180, polling_interval=0.5).status == "Complete"
    bystander = client.wait_for_job_status(other, timeout=180, polling_interval=0.5)
    row.bystander = bystander.status
    assert bystander.status == "Complete"
    row.outcome = (
        f"stopped ({how}); while down: {type(down.value).__name__} (reads and train(), nothing created); "
        f"answers {back_in:.0f}s after its restart; the TrainJob submitted before Complete, a new train() Complete"
    )
