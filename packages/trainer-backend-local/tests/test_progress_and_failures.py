"""Local backend: the progress display while a job's environment is prepared, and failures that name their
cause (environment, out of memory)."""

from __future__ import annotations

import os
import re

import local_jobs as jobs
import pytest

from kubeflow_trainer import CustomTrainer, JobFailedError, TrainerClient
from kubeflow_trainer.progress import PREPARING_REASON

COUNTS = re.compile(r"\d+/\d+ packages")


@pytest.fixture
def client(local_config):
    with TrainerClient(local_config) as c:
        yield c


def test_follow_shows_package_counts_before_the_first_log_line(local_config, capsys, monkeypatch):
    """A fresh environment cache and a small package: the display (plain lines, as off a terminal) shows the
    installer's package counts before get_job_logs(follow=True) yields the job's first line."""
    monkeypatch.setenv("KUBEFLOW_TRAINER_PROGRESS", "plain")
    config = local_config.model_copy(update={"cache_dir": os.path.join(local_config.state_dir, "fresh-cache")})
    client = TrainerClient(config)
    name = client.train(trainer=CustomTrainer(func=jobs.import_six, packages_to_install=["six"], pip_index_urls=None))
    capsys.readouterr()
    shown_before_first_line = None
    lines = []
    for line in client.get_job_logs(name, follow=True):
        if shown_before_first_line is None:
            shown_before_first_line = capsys.readouterr().err
        lines.append(line)
    assert any(line.startswith("SIX ") for line in lines), lines
    assert shown_before_first_line is not None
    progress = [x for x in shown_before_first_line.splitlines() if x.startswith(f"[{name}] ")]
    assert any(COUNTS.search(x) for x in progress), shown_before_first_line
    events = [e.message for e in client.get_job_events(name) if e.reason == PREPARING_REASON]
    assert any(COUNTS.search(m) for m in events), events
    capsys.readouterr()
    assert client.wait_for_job_status(name, timeout=300, polling_interval=0.2).status == "Complete"
    assert capsys.readouterr().err == "", "a display opened after the job ran shows nothing"
    client.delete_job(name)


def test_progress_is_off_with_the_environment_variable(client, capsys, monkeypatch):
    monkeypatch.setenv("KUBEFLOW_TRAINER_PROGRESS", "0")
    name = client.train(trainer=CustomTrainer(func=jobs.import_six))
    client.wait_for_job_status(name, {"Complete", "Failed"}, timeout=300, polling_interval=0.2)
    assert capsys.readouterr().err == ""
    client.delete_job(name)


def test_unresolvable_requirement_is_named(client):
    name = client.train(trainer=CustomTrainer(func=jobs.import_six, packages_to_install=["kft-no-such-pkg-xyz==0.0.1"]))
    with pytest.raises(JobFailedError) as info:
        client.wait_for_job_status(name, timeout=300, polling_interval=0.2, progress=False)
    first = str(info.value).splitlines()[0]
    assert "the requirement 'kft-no-such-pkg-xyz' could not be resolved" in first, str(info.value)
    node = client.get_job(name).steps[0]
    assert "kft-no-such-pkg-xyz" in (node.message or "")
    client.delete_job(name)


def test_the_rank_that_failed_first_is_named(client):
    """Four processes on two nodes: rank 3 (node-1) raises first; the job's failure names it, its line and
    node-1, and node-1's step carries it."""
    name = client.train(trainer=CustomTrainer(func=jobs.ranks_fail_in_turn, num_nodes=2, resources_per_node={"cpu": 2}))
    with pytest.raises(JobFailedError) as info:
        client.wait_for_job_status(name, timeout=300, polling_interval=0.2, progress=False)
    first = str(info.value).splitlines()[0]
    assert 'node-1 failed: rank 3: KeyError: "rank three\'s key"' in first, str(info.value)
    assert "in ranks_fail_in_turn: raise KeyError" in first
    node1 = next(s for s in client.get_job(name).steps if s.name == "node-1")
    assert (node1.message or "").startswith("rank 3: KeyError")
    client.delete_job(name)


def test_a_failed_initializer_fails_the_job_and_its_nodes_in_one_write(local_config, monkeypatch):
    """The supervisor's own logic, in this process on a real job record: the dataset initializer exits 1
    while the model initializer ignores SIGTERM (stopping it takes the 2 s grace period). Every state the
    job's readers can see that says Failed already says why its nodes never ran (CI once read node-0
    Created, no message, under a Failed job)."""
    import json
    import shutil
    import subprocess
    import sys
    import threading
    import time

    from kubeflow_trainer import Initializer, Name, UrlDatasetInitializer, UrlModelInitializer
    from kubeflow_trainer_local.backend import LocalProcessBackend
    from kubeflow_trainer_local.launch import PopenHandle
    from kubeflow_trainer_local.supervisor import Supervisor

    # The job record as train() writes it, with no supervisor started (this test is its supervisor).
    monkeypatch.setattr(LocalProcessBackend, "_fork_supervisor", lambda self, *args: os.getpid())
    client = TrainerClient(local_config)
    closed = "http://127.0.0.1:9"
    name = client.train(
        trainer=CustomTrainer(func=jobs.echo_arg, func_args={"text": "x"}),
        initializer=Initializer(
            dataset=UrlDatasetInitializer(storage_uri=f"{closed}/d.csv"),
            model=UrlModelInitializer(storage_uri=f"{closed}/m.bin"),
        ),
        options=[Name("one-write")],
    )
    supervisor = Supervisor(local_config.state_dir, name)
    supervisor.grace = 2.0
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
    )
    model = subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, start_new_session=True)
    assert model.stdout is not None and model.stdout.readline()  # its SIGTERM handler is in place
    dataset = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"], start_new_session=True)
    for step, proc in (("dataset-initializer", dataset), ("model-initializer", model)):
        supervisor.procs[proc.pid] = (step, PopenHandle(proc))
    seen: list[dict] = []
    done = threading.Event()

    def watch() -> None:
        path = os.path.join(supervisor.record.dir, "state.json")
        while not done.is_set():
            try:
                with open(path) as fh:
                    state = json.load(fh)
            except (OSError, ValueError):
                continue
            if state.get("status") == "Failed":
                seen.append(state)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        started = time.monotonic()
        assert supervisor.wait_initializers() is False
        assert time.monotonic() - started >= 1.5, "the model initializer was stopped at once: no window to see"
    finally:
        done.set()
        watcher.join()
        for proc in (model, dataset):
            proc.kill()
            proc.wait()
        # not delete_job: it would stop the job's recorded supervisor, which is this process
        shutil.rmtree(supervisor.record.dir)
    assert len(seen) > 10, "the job read Failed only at the end"
    for state in seen:
        nodes = state["nodes"]
        assert all(n["status"] == "Failed" for n in nodes.values()), nodes
        assert all(n["message"] == "not started because dataset-initializer failed" for n in nodes.values()), nodes
