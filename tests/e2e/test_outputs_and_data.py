"""Outputs back and data directories on local, Docker and Podman, with real engines and real torchrun.

A 2-node job writes a checkpoint on rank 0 to ``$KUBEFLOW_TRAINER_OUTPUT_DIR``; after the job ended (its
containers exited) a NEW Python process fetches it with one call and it matches byte for byte, streamed (the
fetching process's peak memory grows far less than the file's size); the same after a failed job;
``delete_job`` removes the outputs with everything else. A data directory is read in place, read-only in
containers.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_IMAGE, cli, config_for, require_engine

from kubeflow_trainer import (
    Capability,
    CustomTrainer,
    DataDirs,
    JobFailedError,
    JobNotFoundError,
    Name,
    TrainerClient,
)
from kubeflow_trainer.plan import random_job_name
from kubeflow_trainer.testing import jobs

BIG = 64 * 1024 * 1024 + 3
"""The checkpoint's size: large enough that holding it in memory would show in the fetching process."""

FETCH = """
import json, resource, sys, importlib
spec = json.loads(sys.argv[1])
module = importlib.import_module(spec["module"])
config = getattr(module, spec["cls"]).model_validate_json(spec["config"])
from kubeflow_trainer import TrainerClient
client = TrainerClient(backend_config=config)
client.get_job(spec["name"])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
paths = client.get_job_outputs(spec["name"], spec["dest"], path=spec.get("path"))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"paths": [str(p) for p in paths], "peak_growth_kib": after - before}))
"""


def fetch_in_new_process(config: Any, name: str, dest: Path, path: str | None = None) -> dict[str, Any]:
    """``get_job_outputs`` in a fresh interpreter (nothing shared with the client that started the job)."""
    spec = {
        "module": type(config).__module__,
        "cls": type(config).__name__,
        "config": config.model_dump_json(),
        "name": name,
        "dest": str(dest),
        "path": path,
    }
    out = subprocess.run(
        [sys.executable, "-c", FETCH, json.dumps(spec)], capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(params=["local", "docker", "podman"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Any, dict[str, Any]]:
    backend = str(request.param)
    if backend == "local":
        from kubeflow_trainer_local import LocalProcessBackendConfig

        return backend, LocalProcessBackendConfig(state_dir=str(tmp_path / "state")), {}
    require_engine(backend)
    return backend, config_for(backend), {"image": TEST_IMAGE}


def job_objects(backend: str, config: Any, name: str) -> list[str]:
    """What is left of job ``name``: its directory (local) or its labelled containers and volumes (engines)."""
    if backend == "local":
        return [str(p) for p in (Path(config.state_dir) / "jobs").glob(name)]
    flt = f"label=trainer.kubeflow.org/trainjob-name={name}"
    found = cli(backend, "ps", "-a", "--filter", flt, "--format", "{{.Names}}").split()
    return found + cli(backend, "volume", "ls", "--filter", flt, "--format", "{{.Name}}").split()


def test_checkpoint_fetched_by_a_new_process_after_the_job_ended(
    setup: tuple[str, Any, dict[str, Any]], tmp_path: Path
) -> None:
    backend, config, trainer_defaults = setup
    client = TrainerClient(backend_config=config)
    ok, bad = f"kft-out-{random_job_name()[:6]}", f"kft-outbad-{random_job_name()[:6]}"
    try:
        client.train(
            trainer=CustomTrainer(func=jobs.checkpoint_job, func_args={"size": BIG}, num_nodes=2, **trainer_defaults),
            options=[Name(ok)],
        )
        client.train(
            trainer=CustomTrainer(
                func=jobs.checkpoint_job, func_args={"size": 4096, "fail": True}, num_nodes=2, **trainer_defaults
            ),
            options=[Name(bad)],
        )
        job = client.wait_for_job_status(ok, timeout=600, polling_interval=0.5)
        assert [s.status for s in job.steps] == ["Complete", "Complete"]
        with pytest.raises(JobFailedError):
            client.wait_for_job_status(bad, timeout=600, polling_interval=0.5)
        if backend != "local":  # the nodes' containers have exited: the files come from stopped containers
            flt = f"label=trainer.kubeflow.org/trainjob-name={ok}"
            states = cli(backend, "ps", "-a", "--filter", flt, "--format", "{{.State}}").splitlines()
            assert states and all(s.lower().startswith("exited") for s in states), states
        client.close()

        got = fetch_in_new_process(config, ok, tmp_path / "ok")
        rel = sorted(Path(p).relative_to(tmp_path / "ok").as_posix() for p in got["paths"])
        assert rel == ["ckpt/model.bin", "metrics.json", "ranks/rank-0.txt", "ranks/rank-1.txt"], rel
        expected = hashlib.sha256(jobs.checkpoint_bytes(BIG)).hexdigest()
        assert sha256(tmp_path / "ok" / "ckpt" / "model.bin") == expected
        assert (tmp_path / "ok" / "ranks" / "rank-1.txt").read_text() == "rank 1\n"  # both nodes share the dir
        assert got["peak_growth_kib"] < 32 * 1024, f"fetching a {BIG >> 20} MiB file grew the peak by {got}"

        part = fetch_in_new_process(config, bad, tmp_path / "bad", path="ckpt/model.bin")
        assert [Path(p).relative_to(tmp_path / "bad").as_posix() for p in part["paths"]] == ["ckpt/model.bin"]
        assert (tmp_path / "bad" / "ckpt" / "model.bin").read_bytes() == jobs.checkpoint_bytes(4096)

        other = TrainerClient(backend_config=config)
        for name in (ok, bad):
            assert job_objects(backend, config, name), f"{name}: nothing to delete?"
            other.delete_job(name)
            assert job_objects(backend, config, name) == [], f"{name}: delete_job left outputs behind"
            with pytest.raises(JobNotFoundError):
                other.get_job_outputs(name, tmp_path / "gone")
        assert not (tmp_path / "gone").exists()
        other.close()
    finally:
        cleanup = TrainerClient(backend_config=config)
        for name in (ok, bad):
            try:
                cleanup.delete_job(name)
            except JobNotFoundError:
                pass
        cleanup.close()


def test_data_directory_is_read_in_place(setup: tuple[str, Any, dict[str, Any]], tmp_path: Path) -> None:
    """Both nodes read the directory where it is (containers: a read-only bind mount, nothing copied)."""
    backend, config, trainer_defaults = setup
    data = tmp_path / "dataset"
    (data / "shards").mkdir(parents=True)
    files = {"shards/a.bin": bytes(range(256)) * 64, "labels.csv": b"id,label\n1,cat\n"}
    for rel, content in files.items():
        (data / rel).write_bytes(content)
    for directory in (tmp_path, data, data / "shards"):
        directory.chmod(0o755)
    client = TrainerClient(backend_config=config)
    name = f"kft-data-{random_job_name()[:6]}"
    trainer = CustomTrainer(
        func=jobs.data_dir_job,
        func_args={"variable": "KUBEFLOW_TRAINER_DATA_DIR_DATASET"},
        num_nodes=2,
        **trainer_defaults,
    )
    dry = client.dry_run(trainer=trainer, options=[DataDirs({"dataset": data}), Name(name)])
    if backend != "local":
        assert all(c.binds == {str(data): "/kft-data/dataset"} for c in dry.request.containers)
        assert all(c.mounts()[str(data)]["mode"] == "ro" for c in dry.request.containers)
    try:
        client.train(trainer=trainer, options=[DataDirs({"dataset": data}), Name(name)])
        client.wait_for_job_status(name, timeout=600, polling_interval=0.5)
        for step in ("node-0", "node-1"):
            lines = list(client.get_job_logs(name, step=step))
            assert f"TREE KUBEFLOW_TRAINER_DATA_DIR_DATASET {jobs.tree_digest(files)}" in lines, lines
            if Capability.READ_ONLY_DATA_DIRS in client.capabilities:
                assert any(line.startswith("DATADIR read-only") for line in lines), lines
        assert sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()) == sorted(files)
    finally:
        client.delete_job(name)
        client.close()
