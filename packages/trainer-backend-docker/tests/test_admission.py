"""Admission under load on Docker: 50 one-node jobs submitted together with max_running_jobs=2; at most 2 run
at any time (counted from the process table: the containers' processes are this machine's), all complete, in
submission order; queued jobs read Suspended and are started by detached queue runners, no client needed."""

from __future__ import annotations

import pytest
from conftest import TEST_IMAGE

from kubeflow_trainer import CustomTrainerContainer, TrainerClient
from kubeflow_trainer.testing.load import burst

SHORT = CustomTrainerContainer(image=TEST_IMAGE, command=["sh", "-c", "echo short job; sleep 3"])
"""A short container job (no torchrun: the check is about admission, and stays cheap in CI)."""


@pytest.fixture
def client(docker_config, tmp_path):
    config = docker_config.model_copy(update={"max_running_jobs": 2, "queue_dir": str(tmp_path / "queue")})
    with TrainerClient(config) as c:
        names: list[str] = []
        yield c, names
        for name in names:
            try:
                c.delete_job(name)
            except Exception:
                pass


def test_fifty_jobs_run_two_at_a_time_in_submission_order(client):
    c, names = client
    # Finished jobs are deleted as they end, as a sweep does (one-node jobs hold no network; the fault table's
    # 50-job row keeps them all until the end).
    result = burst(c, SHORT, count=50, timeout=1200, names_out=names, delete_finished=True)
    print(
        f"docker: 50 jobs, limit 2: submitted in {result.submit_seconds:.1f}s, all ended after "
        f"{result.wall_seconds:.1f}s; peak {result.peak} running ({result.samples} samples); "
        f"{result.suspended_seen} read Suspended after submission"
    )
    failed = {n: s for n, s in result.statuses.items() if s != "Complete"}
    assert len(result.statuses) == 50 and not failed, failed
    assert 1 <= result.peak <= 2
    assert result.suspended_seen >= 30
    assert result.start_order_kept(), sorted(result.first_seen, key=result.first_seen.__getitem__)
