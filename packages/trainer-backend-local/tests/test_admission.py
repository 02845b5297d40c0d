"""Admission under load on the local backend: 50 one-node jobs submitted together with max_running_jobs=2;
at most 2 run at any time (counted from the process table), all complete, in submission order; queued jobs
read Suspended and start with no client (the supervisors wait their turn)."""

from __future__ import annotations

import pytest

from kubeflow_trainer import CustomTrainer, TrainerClient
from kubeflow_trainer.testing.load import burst


def short_job() -> None:
    import time

    print("short job", flush=True)
    time.sleep(0.5)  # long enough for the 0.1 s process sampler to see every job run (a hot start takes 0.2 s)


@pytest.fixture
def client(local_config):
    with TrainerClient(local_config.model_copy(update={"max_running_jobs": 2})) as c:
        yield c
        for job in c.list_jobs():
            c.delete_job(job.name)


def test_fifty_jobs_run_two_at_a_time_in_submission_order(client):
    result = burst(client, CustomTrainer(func=short_job), count=50, timeout=900)
    print(
        f"local: 50 jobs, limit 2: submitted in {result.submit_seconds:.1f}s, all ended after "
        f"{result.wall_seconds:.1f}s; peak {result.peak} running ({result.samples} samples); "
        f"{result.suspended_seen} read Suspended after submission"
    )
    failed = {n: client.get_job(n).message for n, s in result.statuses.items() if s != "Complete"}
    assert len(result.statuses) == 50 and not failed, failed
    assert 1 <= result.peak <= 2
    assert result.suspended_seen >= 40  # at most 2 run, a few may have ended already
    assert result.start_order_kept(), sorted(result.first_seen, key=result.first_seen.__getitem__)
    events = {e.reason for e in client.get_job_events(result.names[-1])}
    assert {"Queued", "Admitted"} <= events, events


def test_a_queued_job_reads_suspended_and_starts_after_its_client_is_gone(local_config):
    config = local_config.model_copy(update={"max_running_jobs": 1})
    from kubeflow_trainer.testing import jobs

    with TrainerClient(config) as first:
        long = first.train(trainer=CustomTrainer(func=jobs.sleeping_job, func_args={"seconds": 4}))
        queued = first.train(trainer=CustomTrainer(func=short_job))
        job = first.get_job(queued)
        assert job.status == "Suspended" and "queued" in (job.message or ""), (job.status, job.message)
    with TrainerClient(config) as later:  # the first client is closed: the supervisors went on by themselves
        assert later.wait_for_job_status(queued, timeout=120, polling_interval=0.5).status == "Complete"
        assert later.get_job(long).status == "Complete"
        for name in (long, queued):
            later.delete_job(name)
