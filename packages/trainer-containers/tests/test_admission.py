"""Admission on the container backend (FakeEngine): a job beyond max_running_jobs holds nothing on the engine,
reads Suspended with its place, is created and started in submission order when running jobs end, and can be
deleted while it waits. The queue runner is played in this process (the real one runs on Docker's tests)."""

from __future__ import annotations

import os
import threading

from conftest import hello, make_plan

from kubeflow_trainer.admission import Ticket
from kubeflow_trainer.options import Name
from kubeflow_trainer.types import CustomTrainer, JobStatus
from kubeflow_trainer_containers import ContainerBackend, ContainerJobRequest


def plan(name: str, nodes: int = 1) -> object:
    return make_plan(CustomTrainer(func=hello, num_nodes=nodes), options=[Name(name)])


def limited(backend: ContainerBackend, limit: int) -> list[tuple[ContainerJobRequest, Ticket]]:
    """Set the limit; capture the runner spawns instead of starting processes."""
    backend.config = backend.config.model_copy(update={"max_running_jobs": limit})
    spawned: list[tuple[ContainerJobRequest, Ticket]] = []

    def spawn(request: ContainerJobRequest, ticket: Ticket) -> None:
        spawned.append((request, ticket))

    backend._spawn_runner = spawn  # type: ignore[method-assign]
    return spawned


def test_jobs_beyond_the_limit_wait_holding_nothing_and_start_in_order(backend, engine):
    spawned = limited(backend, 1)
    backend.submit(backend.render(plan("a")))
    backend.submit(backend.render(plan("b")))
    backend.submit(backend.render(plan("c")))
    assert engine.objects()[0] == {"a-node-0"}  # b and c created nothing on the engine
    job = backend.get_job("b")
    assert job.status == JobStatus.SUSPENDED and "queued: 1 of 2" in (job.message or ""), job.message
    assert backend.get_job("c").message.startswith("queued: 2 of 2")
    assert {j.name: j.status for j in backend.list_jobs()} == {"a": "Running", "b": "Suspended", "c": "Suspended"}
    assert [e.reason for e in backend.get_job_events("c")] == ["Queued"]
    assert list(backend.get_job_logs("c")) == []

    runners = [threading.Thread(target=backend.run_queued, args=item) for item in reversed(spawned)]
    for runner in runners:  # c's runner first: it must still wait for b
        runner.start()
    engine.finish("a-node-0", 0)
    for _ in range(100):
        if "b-node-0" in engine.objects()[0]:
            break
        threading.Event().wait(0.05)
    assert engine.objects()[0] == {"a-node-0", "b-node-0"}  # b before c, and only one at a time
    assert backend.get_job("b").status == JobStatus.RUNNING and backend.get_job("c").status == JobStatus.SUSPENDED
    engine.finish("b-node-0", 0)
    for runner in runners:
        runner.join(10)
    assert engine.objects()[0] == {"a-node-0", "b-node-0", "c-node-0"}
    assert backend.get_job("c").status == JobStatus.RUNNING


def test_a_waiting_job_can_be_deleted_and_its_runner_starts_nothing(backend, engine):
    spawned = limited(backend, 1)
    backend.submit(backend.render(plan("a")))
    backend.submit(backend.render(plan("b")))
    backend.delete_job("b")
    request, ticket = spawned[0]
    assert backend.run_queued(request, ticket) is False
    assert engine.objects()[0] == {"a-node-0"}
    assert [j.name for j in backend.list_jobs()] == ["a"]


def test_deleting_a_waiting_job_is_atomic_with_its_runner(backend, engine):
    """The runner's turn comes while delete_job runs (injected: the runner is let go between delete_job's first
    look at the engine and the rest): either delete_job finds what the runner created and removes it, or the
    runner finds the job deleted and creates nothing; never a container or network created after the delete."""
    spawned = limited(backend, 1)
    backend.submit(backend.render(plan("a")))
    backend.submit(backend.render(plan("b", nodes=2)))
    engine.finish("a-node-0", 0)  # b's turn has come: its runner would start it at once
    request, ticket = spawned[0]
    outcome: list[bool] = []
    runner = threading.Thread(target=lambda: outcome.append(backend.run_queued(request, ticket)))
    real_list = engine.list_containers

    def list_containers(labels: dict[str, str]) -> list:  # type: ignore[type-arg]
        engine.list_containers = real_list  # type: ignore[method-assign]
        seen = real_list(labels)
        runner.start()
        runner.join(2)  # a runner not held off creates the job now, after delete_job looked
        return seen

    engine.list_containers = list_containers  # type: ignore[method-assign]
    backend.delete_job("b")
    runner.join(10)
    assert outcome in ([False], [True]), outcome
    assert engine.objects()[0] == {"a-node-0"} and engine.objects()[1] == set(), engine.objects()
    assert [j.name for j in backend.list_jobs()] == ["a"]


def test_a_waiting_job_whose_runner_died_reads_failed_with_the_remedy(backend, engine):
    spawned = limited(backend, 1)
    backend.submit(backend.render(plan("a")))
    backend.submit(backend.render(plan("b")))
    assert backend.get_job("b").status == JobStatus.SUSPENDED
    os.close(spawned[0][1].fd)  # the runner dies: the kernel drops its ticket's lock, the file stays
    job = backend.get_job("b")
    assert job.status == JobStatus.FAILED, job
    assert "queue runner" in (job.message or "") and "died" in job.message and "delete_job('b')" in job.message
    assert {j.name: j.status for j in backend.list_jobs()} == {"a": "Running", "b": "Failed"}
    assert [e.reason for e in backend.get_job_events("b")] == ["Failed"]
    engine.finish("a-node-0", 0)
    assert backend.get_job("b").status == JobStatus.FAILED  # nobody will start it any more
    backend.delete_job("b")
    assert [j.name for j in backend.list_jobs()] == ["a"] and engine.objects()[0] == {"a-node-0"}
