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
