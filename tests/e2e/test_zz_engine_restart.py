"""The engine going away mid-run: typed BackendUnavailableError (no raw tracebacks), and the job is found again
from its labels once the engine is back. Runs last in the e2e suite (it stops and restarts the engines with
the project's own scripts)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import config_for

from kubeflow_trainer import BackendUnavailableError, CustomTrainer, TrainerClient

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "containers"


def sleeper(seconds: float) -> None:
    import time

    print("UP", flush=True)
    time.sleep(seconds)


def test_engine_restart(engine):
    client = TrainerClient(config_for(engine))
    name = client.train(trainer=CustomTrainer(func=sleeper, func_args={"seconds": 600}))
    client.wait_for_job_status(name, {"Running"}, timeout=120, polling_interval=0.2)
    stop = subprocess.run(
        ["bash", str(SCRIPTS / "stop-engines.sh"), engine], capture_output=True, text=True, check=False
    )
    assert stop.returncode == 0, stop.stderr
    try:
        down = TrainerClient(config_for(engine))
        for call in (
            down.list_jobs,
            lambda: down.get_job(name),
            lambda: list(down.get_job_logs(name)),
            lambda: down.delete_job(name),
        ):
            with pytest.raises(BackendUnavailableError, match="cannot reach"):
                call()
    finally:
        up = subprocess.run(
            ["bash", str(SCRIPTS / "setup-engines.sh"), engine], capture_output=True, text=True, check=False
        )
        assert up.returncode == 0, up.stderr
    again = TrainerClient(config_for(engine))
    job = again.get_job(name)  # found again from the labels on its containers
    assert job.name == name and [s.name for s in job.steps] == ["node-0"]
    # Podman's containers outlive its service (conmon); dockerd without live-restore stops them.
    assert job.status == ("Running" if engine == "podman" else "Failed")
    again.delete_job(name)
    assert name not in {j.name for j in again.list_jobs()}
