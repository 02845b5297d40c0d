"""50 jobs submitted at once (10 client threads) with an admission limit of 2: at most 2 run at any time
(counted from the process table / the engine, not through the SDK), every one completes with its own output,
a bystander submitted first is not disturbed, nothing is left behind. The wall time is printed in the row.
Local and Docker (Podman runs the same container backend code; its 50 jobs took 262 s on 2026-12-07, checked
by hand rather than in every CI run). One-node container jobs hold no network of their own, so 50 finished
jobs stay within Docker's default address pools until they are deleted."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import faultjobs as jobs
import pytest
from conftest import JOB_LABEL, cli

from kubeflow_trainer import CustomTrainer, Name

JOBS = 50
LIMIT = 2


def running_jobs(scope, names: set[str]) -> set[str]:  # type: ignore[no-untyped-def]
    """The test's jobs with a running node: local from the job name every node process carries in its
    environment (torchrun's and hot-started ones alike, see kubeflow_trainer.testing.processes), engines from
    their running containers' labels."""
    if scope.backend == "local":
        found = set()
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                with open(f"/proc/{pid}/environ", "rb") as fh:
                    env = dict(e.split(b"=", 1) for e in fh.read().split(b"\0") if b"=" in e)
            except OSError:
                continue
            found.add(env.get(b"KUBEFLOW_TRAINER_JOB_NAME", b"").decode(errors="replace"))
        return found & names
    fmt = '{{ .Label "' + JOB_LABEL + '" }}' if scope.backend == "docker" else '{{ index .Labels "' + JOB_LABEL + '" }}'
    return set(cli(scope.backend, "ps", "--filter", f"label={JOB_LABEL}", "--format", fmt).split()) & names


@pytest.mark.parametrize("backend", ["local", "docker"])
def test_fifty_jobs_at_once(backend, fault, tmp_path):
    limit: dict[str, object] = {"max_running_jobs": LIMIT}
    if backend != "local":
        limit["queue_dir"] = str(tmp_path / "queue")
    scope, client, row = fault(f"{JOBS} jobs at once, limit {LIMIT}", backend, **limit)
    other = client.train(
        trainer=CustomTrainer(func=jobs.sleeper, func_args={"seconds": 8}), options=[Name(scope.job_name("by"))]
    )
    names = [scope.job_name(f"n{i}") for i in range(JOBS)]
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, len(running_jobs(scope, set(scope.names))))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        submitted = list(
            pool.map(
                lambda n: client.train(trainer=CustomTrainer(func=jobs.quick, func_args={"tag": n}), options=[Name(n)]),
                names,
            )
        )
    assert submitted == names
    deadline = time.monotonic() + 900
    pending = set(names)
    while pending and time.monotonic() < deadline:
        states = {j.name: j.status for j in client.list_jobs() if j.name in pending}
        failed = {n: s for n, s in states.items() if s == "Failed"}
        assert not failed, {n: client.get_job(n).message for n in failed}
        pending -= {n for n, s in states.items() if s == "Complete"}
        time.sleep(1)
    wall = time.monotonic() - started
    done.set()
    watcher.join()
    assert not pending, f"{len(pending)} of {JOBS} jobs did not complete in 900 s"
    for n in names[:: JOBS // 5]:  # each job ran its own request
        assert f"DONE {n}" in list(client.get_job_logs(n))
    bystander = client.wait_for_job_status(other, timeout=300, polling_interval=0.5)
    assert bystander.status == "Complete"
    row.bystander = "Complete"
    row.outcome = f"all {JOBS} Complete in {wall:.0f}s wall; at most {peak} running at once"
    assert 1 <= peak <= LIMIT, f"{peak} jobs seen running at once with a limit of {LIMIT}"
