"""Reading a node's log file in blocks (``get_job_logs``): lines come out whole whatever the block boundaries."""

from __future__ import annotations

import os

import pytest

from kubeflow_trainer_local import LocalProcessBackendConfig
from kubeflow_trainer_local import backend as local_backend
from kubeflow_trainer_local.backend import LocalProcessBackend
from kubeflow_trainer_local.store import JobRecord

TEXT = "first\r\n\nü-long-" + "y" * 50 + "\nbar\rlast without newline"
LINES = ["first", "", "ü-long-" + "y" * 50, "bar\rlast without newline"]


@pytest.mark.parametrize("size", [1, 3, 7, 64, 1 << 20])
def test_lines_are_whole_across_read_boundaries(tmp_path, monkeypatch, size):
    backend = LocalProcessBackend(LocalProcessBackendConfig(state_dir=str(tmp_path), cache_dir=str(tmp_path / "c")))
    record = JobRecord(str(tmp_path), "job")
    os.makedirs(record.logs_dir)
    with open(record.log_path("node-0"), "wb") as fh:
        fh.write(TEXT.encode())
    monkeypatch.setattr(local_backend, "LOG_READ_SIZE", size)
    assert list(backend._follow(record, "node-0", follow=False)) == LINES
