"""The container engine's API service crashes (SIGKILL) and restarts while a job runs: client calls raise the
typed BackendUnavailableError meanwhile, the job runs on (its containers live under conmon) and completes,
a bystander job is not disturbed, nothing is left behind.

Podman: a second ``podman system service`` of this test on its own socket (same storage as the shared one) is
the engine the job is submitted through; killing and restarting it disturbs no other user of the machine.
Docker: restarting the shared dockerd stops every container on the machine (no live-restore), other users'
included; that fault runs in tests/e2e/test_zz_engine_restart.py (the job is Failed and found again, typed
errors meanwhile), at the end of the e2e session."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import faultjobs as jobs
import pytest
from conftest import SCOPE_ENV, backend_config, wait_for

from kubeflow_trainer import BackendUnavailableError, CustomTrainer, Name, TrainerClient


def start_service(socket: Path, log: Path) -> subprocess.Popen[bytes]:
    socket.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != SCOPE_ENV}  # the engine is not one of the job's processes
    conf = Path(os.environ.get("KFT_STATE_DIR", "/nonexistent")) / "containers.conf"
    if conf.exists():
        env["CONTAINERS_CONF"] = str(conf)
    proc = subprocess.Popen(
        ["podman", "--runtime", "runc", "system", "service", "--time=0", f"unix://{socket}"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for(
        lambda: (
            subprocess.run(
                ["podman", "--remote", "--url", f"unix://{socket}", "info"], capture_output=True, check=False
            ).returncode
            == 0
        ),
        60,
        "the private podman service answering",
    )
    return proc


class Service:
    """A private ``podman system service`` on its own socket, killed and restarted by the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.socket = Path(f"/tmp/kft-faults-{os.getpid()}-{time.monotonic_ns()}.sock")
        self.log = tmp_path / "service.log"
        self.proc = start_service(self.socket, self.log)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def restart(self) -> None:
        self.proc = start_service(self.socket, self.log)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        self.socket.unlink(missing_ok=True)


@pytest.fixture
def service(tmp_path):
    """Set up before ``fault`` (so it is stopped after the fault fixture has deleted and counted the jobs)."""
    running = Service(tmp_path)
    yield running
    running.stop()


def test_podman_service_killed_and_restarted(service, fault, tmp_path):
    scope, client, row = fault("engine API service killed + restarted", "podman", host=f"unix://{service.socket}")
    with TrainerClient(backend_config("podman", tmp_path)) as shared:  # through the shared service
        other = shared.train(
            trainer=CustomTrainer(func=jobs.sleeper, func_args={"seconds": 20}),
            options=[Name(scope.job_name("by"))],
        )
        name = client.train(
            trainer=CustomTrainer(func=jobs.sleeper, func_args={"seconds": 25}),
            options=[Name(scope.job_name("eng"))],
        )
        client.wait_for_job_status(name, {"Running"}, timeout=120, polling_interval=0.2)
        service.kill()
        down = TrainerClient(scope.config)
        for call in (down.list_jobs, lambda: down.get_job(name), lambda: list(down.get_job_logs(name))):
            with pytest.raises(BackendUnavailableError, match="cannot reach"):
                call()
        service.restart()
        job = TrainerClient(scope.config).wait_for_job_status(name, timeout=300, polling_interval=0.5)
        assert job.status == "Complete" and "DONE" in list(client.get_job_logs(name))
        row.outcome = "typed BackendUnavailableError while down; the job ran on and is Complete after the restart"
        assert shared.wait_for_job_status(other, timeout=300, polling_interval=0.5).status == "Complete"
        shared.delete_job(other)
        row.bystander = "Complete"
