"""Outputs and data directories of the container backend on the FakeEngine: what is rendered (an output volume
on every node, read-only binds), what submit creates and removes on failure, and reading outputs back."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import hello, make_plan, submit

from kubeflow_trainer.errors import BackendError, JobNotFoundError
from kubeflow_trainer.options import DataDirs, Name
from kubeflow_trainer.outputs import CONTAINER_OUTPUT_DIR, OUTPUT_DIR_ENV
from kubeflow_trainer.types import CustomTrainer


def test_every_node_mounts_the_output_volume_and_the_data_dirs_read_only(backend, tmp_path: Path):
    plan = make_plan(CustomTrainer(func=hello, num_nodes=2), options=[Name("job"), DataDirs({"ds": tmp_path})])
    request = backend.render(plan)
    assert request.outputs_volume is not None and request.outputs_volume.name.endswith("-outputs")
    for spec in request.containers:
        assert spec.volumes[request.outputs_volume.name] == CONTAINER_OUTPUT_DIR
        assert spec.env[OUTPUT_DIR_ENV] == CONTAINER_OUTPUT_DIR
        assert spec.env["KUBEFLOW_TRAINER_DATA_DIR_DS"] == "/kft-data/ds"
        assert spec.mounts()[str(tmp_path)] == {"bind": "/kft-data/ds", "mode": "ro"}
    for native in request.engine_requests:
        assert CONTAINER_OUTPUT_DIR in str(native) and "/kft-data/ds" in str(native)


def test_submit_creates_the_output_volume_and_a_failure_removes_it(backend, engine):
    submit(backend, make_plan(CustomTrainer(func=hello), options=[Name("ok")]))
    assert engine.volumes["kft-ok-outputs"] == engine.volumes["kft-ok"]  # labelled as the job: found, removed
    engine.fail("start_container", BackendError("boom"))
    with pytest.raises(BackendError):
        submit(backend, make_plan(CustomTrainer(func=hello), options=[Name("bad")]))
    assert not [v for v in engine.volumes if "bad" in v]


def test_outputs_are_read_from_node_0_after_it_exited_and_gone_after_delete(backend, engine):
    submit(backend, make_plan(CustomTrainer(func=hello, num_nodes=2), options=[Name("job")]))
    engine.write_file("job-node-0", f"{CONTAINER_OUTPUT_DIR}/ckpt/model.bin", b"\x00\x01" * 5000)
    engine.write_file("job-node-0", f"{CONTAINER_OUTPUT_DIR}/metrics.json", b"{}")
    engine.finish("job-node-0", 1)
    engine.finish("job-node-1", 0)
    got = {f.path: f.reader.read() for f in backend.open_outputs("job")}
    assert got == {"ckpt/model.bin": b"\x00\x01" * 5000, "metrics.json": b"{}"}
    assert {f.path for f in backend.open_outputs("job", "ckpt")} == {"ckpt/model.bin"}
    assert list(backend.open_outputs("job", "nothing/here")) == []
    backend.delete_job("job")
    assert not [v for v in engine.volumes if "job" in v]
    with pytest.raises(JobNotFoundError):
        backend.open_outputs("job")
