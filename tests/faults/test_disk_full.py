"""The disk holding the job's workspace fills up while it runs (local: its state dir on a 48 MiB tmpfs).
The job ends Failed saying the disk is full; get_job/list_jobs/delete_job keep working (typed errors
only), a bystander job on another disk is not disturbed, nothing is left behind once the job is deleted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import faultjobs as jobs
import pytest
from conftest import backend_config

from kubeflow_trainer import CustomTrainer, JobFailedError, Name, TrainerClient


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (root needed): {done.stderr.decode()}", pytrace=False)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_local_workspace_disk_full(fault, small_disk, tmp_path):
    scope, client, row = fault("workspace disk full", "local", state_dir=str(small_disk / "state"))
    with TrainerClient(backend_config("local", tmp_path / "elsewhere")) as others:
        other = others.train(
            trainer=CustomTrainer(func=jobs.sleeper, func_args={"seconds": 8}), options=[Name(scope.job_name("by"))]
        )
        name = client.train(
            trainer=CustomTrainer(func=jobs.filler, func_args={"megabytes": 200}),
            options=[Name(scope.job_name("full"))],
        )
        with pytest.raises(JobFailedError) as failed:
            client.wait_for_job_status(name, timeout=300, polling_interval=0.5)
        job = failed.value.job
        assert job.status == "Failed" and "No space left on device" in (job.message or ""), job.message
        assert name in {j.name for j in client.list_jobs()}
        list(client.get_job_logs(name))  # readable, whatever could be written
        row.outcome = f"Failed: {job.message}"
        assert others.wait_for_job_status(other, timeout=300, polling_interval=0.5).status == "Complete"
        others.delete_job(other)
        assert not (tmp_path / "elsewhere" / "state" / "jobs" / other).exists()
        row.bystander = "Complete (other disk)"
