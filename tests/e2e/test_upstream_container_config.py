"""Upstream's ``ContainerBackendConfig`` and the in-job ``update_trainjob_status`` on the real Docker engine
and the real Podman service (the ``engine`` fixture of tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import os
from importlib import resources

import pytest

from kubeflow_trainer import (
    ContainerBackendConfig,
    CustomTrainer,
    TrainerClient,
    TrainingRuntimeSource,
)
from kubeflow_trainer.errors import BackendUnavailableError

TEST_IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")

pytestmark = pytest.mark.slow


def report_rank() -> None:
    import os

    from kubeflow_trainer import update_trainjob_status

    if int(os.environ["RANK"]) == 1:
        assert update_trainjob_status(progress_percent=60, estimated_remaining_seconds=9, metrics={"loss": 0.5})


def say_hello() -> None:
    print("hello")


def upstream_config(**fields: object) -> ContainerBackendConfig:
    return ContainerBackendConfig(image=TEST_IMAGE, pull_policy="Never", stop_timeout=2, **fields)  # type: ignore[arg-type]


def test_upstream_config_selects_this_engine(engine):
    with TrainerClient(backend_config=upstream_config(container_runtime=engine)) as client:
        assert client.backend_name == engine
        assert type(client.backend.config).__name__ == f"{engine.capitalize()}BackendConfig"
        assert client.backend.config.image == TEST_IMAGE  # the fields given to the upstream config carry over


def test_auto_detection_picks_an_answering_engine():
    with TrainerClient(backend_config=upstream_config()) as client:
        assert client.backend_name in ("docker", "podman")
        client.backend.engine.ping()  # type: ignore[attr-defined]


def test_unreachable_host_is_a_typed_error_naming_the_attempt(engine, tmp_path):
    dead = f"unix://{tmp_path}/no-engine.sock"
    with pytest.raises(BackendUnavailableError) as info:
        TrainerClient(backend_config=upstream_config(container_runtime=engine, container_host=dead))
    assert isinstance(info.value, RuntimeError)  # upstream raises RuntimeError here
    assert engine in str(info.value) and "container_host=" in str(info.value)


def test_runtime_source_file_adds_runtimes_before_the_built_in_ones(engine, tmp_path):
    builtin = json.loads(resources.files("kubeflow_trainer.runtimes").joinpath("torch-distributed.json").read_text())
    builtin["metadata"]["name"] = "my-torch"
    (tmp_path / "my-torch.json").write_text(json.dumps(builtin))
    source = TrainingRuntimeSource(sources=[f"file://{tmp_path}", "github://kubeflow/trainer"])
    with TrainerClient(backend_config=upstream_config(container_runtime=engine, runtime_source=source)) as client:
        assert {r.name for r in client.list_runtimes()} >= {"my-torch", "torch-distributed"}
        assert client.get_runtime("my-torch").trainer.framework == "torch"


def test_unsupported_runtime_source_is_refused_with_the_alternative():
    with pytest.raises(ValueError, match="download the ClusterTrainingRuntime file"):
        TrainingRuntimeSource(sources=["https://example.com/runtimes"])


def test_update_trainjob_status_in_containers_shows_in_get_job(engine):
    with TrainerClient(backend_config=upstream_config(container_runtime=engine)) as client:
        name = client.train(trainer=CustomTrainer(func=report_rank, num_nodes=2))
        try:
            job = client.wait_for_job_status(name, timeout=300)
            assert job.trainer_status is not None
            assert job.trainer_status.progress_percentage == 60
            assert job.trainer_status.estimated_remaining_seconds == 9
            assert job.trainer_status.metrics == {"loss": "0.5"}
        finally:
            client.delete_job(name)


def test_job_without_reports_has_no_trainer_status_and_missing_job_is_a_value_error(engine):
    with TrainerClient(backend_config=upstream_config(container_runtime=engine)) as client:
        name = client.train(trainer=CustomTrainer(func=say_hello))
        try:
            assert client.wait_for_job_status(name, timeout=300).trainer_status is None
        finally:
            client.delete_job(name)
        with pytest.raises(ValueError, match="not found"):  # upstream's container backend raises ValueError
            client.get_job(name)
