"""The local workspace cache: one copy per content, hard-linked into jobs, rebuilt when a job changed it."""

from __future__ import annotations

import os

import pytest

from kubeflow_trainer.workspace import Workspace, WorkspaceError, take_snapshot
from kubeflow_trainer_local.workspaces import ensure_cached, link_into


@pytest.fixture
def snapshot(tmp_path):
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "m.py").write_text("X = 1\n")
    (project / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(project / "run.sh", 0o755)
    return take_snapshot(Workspace(path=str(project)))


def test_copied_once_then_linked(tmp_path, snapshot):
    cache = str(tmp_path / "cache")
    entry = ensure_cached(cache, snapshot)
    assert os.listdir(cache) == [snapshot.digest]
    inode = os.stat(os.path.join(entry, "pkg", "m.py")).st_ino
    assert ensure_cached(cache, snapshot) == entry
    assert os.stat(os.path.join(entry, "pkg", "m.py")).st_ino == inode  # reused, not copied again
    job = tmp_path / "job"
    link_into(entry, snapshot, str(job))
    assert os.stat(job / "pkg" / "m.py").st_ino == inode
    assert os.access(job / "run.sh", os.X_OK)


def test_a_job_that_rewrote_a_file_does_not_poison_the_next(tmp_path, snapshot):
    cache = str(tmp_path / "cache")
    entry = ensure_cached(cache, snapshot)
    job = tmp_path / "job"
    link_into(entry, snapshot, str(job))
    (job / "pkg" / "m.py").write_text("X = 'changed by the job'\n")  # in place: the cache's inode
    entry = ensure_cached(cache, snapshot)
    assert (tmp_path / "cache" / snapshot.digest / "pkg" / "m.py").read_text() == "X = 1\n"


def test_a_file_changed_after_rendering_is_refused(tmp_path, snapshot):
    (tmp_path / "project" / "pkg" / "m.py").write_text("X = 2\n")
    with pytest.raises(WorkspaceError, match="changed after the job was rendered"):
        ensure_cached(str(tmp_path / "cache"), snapshot)
    assert [n for n in os.listdir(tmp_path / "cache") if not n.startswith(".")] == []
