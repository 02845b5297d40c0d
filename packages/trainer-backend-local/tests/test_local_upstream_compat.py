"""Upstream-compatibility behaviour of the local backend on real processes: ``update_trainjob_status`` from
inside a job (whose environment has no trainer-core) shows in ``get_job``; ``cleanup_venv``; upstream-style
``except ValueError`` around a missing job; ``get_runtime_packages`` prints."""

from __future__ import annotations

import os

import pytest

from kubeflow_trainer import (
    CustomTrainer,
    LocalProcessBackendConfig,
    Runtime,
    RuntimeTrainer,
    TrainerClient,
    TrainerType,
)

pytestmark = pytest.mark.slow

PLAIN = Runtime("plain-python", RuntimeTrainer(TrainerType.CUSTOM_TRAINER, "python"))
"""A runtime with no requirements: its environment is a bare venv, built in a second in a private cache."""


def report_progress() -> None:
    import kubeflow_trainer
    from kubeflow_trainer import update_trainjob_status

    print("sdk:", "stand-in" if not hasattr(kubeflow_trainer, "TrainerClient") else "installed")
    assert update_trainjob_status(progress_percent=50, metrics={"loss": 0.5})
    assert update_trainjob_status(progress_percent=100, estimated_remaining_seconds=0, metrics={"loss": 0.125})


def say_hello() -> None:
    print("hello")


@pytest.fixture
def private_config(tmp_path) -> LocalProcessBackendConfig:
    return LocalProcessBackendConfig(
        state_dir=str(tmp_path / "state"), cache_dir=str(tmp_path / "envs"), stop_grace_seconds=2
    )


def test_update_trainjob_status_shows_in_get_job(private_config):
    client = TrainerClient(backend_config=private_config)
    name = client.train(runtime=PLAIN, trainer=CustomTrainer(func=report_progress))
    job = client.wait_for_job_status(name, timeout=300)
    assert "sdk: stand-in" in list(client.get_job_logs(name))
    status = job.trainer_status
    assert status is not None
    assert (status.progress_percentage, status.estimated_remaining_seconds) == (100, 0)
    assert status.metrics == {"loss": "0.125"}
    assert client.list_jobs()[0].trainer_status == status
    client.delete_job(name)


def test_job_without_reports_has_no_trainer_status(private_config):
    client = TrainerClient(backend_config=private_config)
    name = client.train(runtime=PLAIN, trainer=CustomTrainer(func=say_hello))
    assert client.wait_for_job_status(name, timeout=300).trainer_status is None
    client.delete_job(name)


def test_cleanup_venv_false_keeps_the_jobs_environment_until_delete(private_config):
    keep = TrainerClient(backend_config=private_config.model_copy(update={"cleanup_venv": False}))
    name = keep.train(runtime=PLAIN, trainer=CustomTrainer(func=say_hello))
    keep.wait_for_job_status(name, timeout=300)
    (env,) = keep.backend.list_environments()
    assert keep.backend.prune_environments() == []
    assert os.path.isdir(env.path)
    keep.delete_job(name)
    assert keep.backend.prune_environments() == [env.key]
    assert not os.path.exists(env.path)


def test_cleanup_venv_true_lets_an_ended_jobs_environment_go(private_config):
    assert private_config.cleanup_venv is True  # upstream's default
    client = TrainerClient(backend_config=private_config)
    name = client.train(runtime=PLAIN, trainer=CustomTrainer(func=say_hello))
    client.wait_for_job_status(name, timeout=300)
    (env,) = client.backend.list_environments()
    assert client.backend.prune_environments() == [env.key]
    assert not os.path.exists(env.path)
    assert client.get_job(name).status == "Complete"  # the job itself stays until delete_job
    client.delete_job(name)


def test_missing_job_is_caught_by_upstream_style_except_value_error(private_config):
    client = TrainerClient(backend_config=private_config)
    for call in (client.get_job, client.delete_job, lambda n: list(client.get_job_logs(n))):
        with pytest.raises(ValueError, match="not found"):
            call("nosuchjob")


def test_get_runtime_packages_prints_them(private_config, capsys):
    client = TrainerClient(backend_config=private_config)
    runtime = client.get_runtime("torch-distributed")
    packages = client.get_runtime_packages(runtime)
    assert packages and capsys.readouterr().out.splitlines() == packages


def report_rank() -> None:
    import os

    from kubeflow_trainer import update_trainjob_status

    rank = int(os.environ["RANK"])
    if rank == 1:
        assert update_trainjob_status(progress_percent=75, metrics={"reported_by": rank})


def test_update_trainjob_status_under_torchrun_on_two_nodes(local_config):
    client = TrainerClient(backend_config=local_config)
    name = client.train(trainer=CustomTrainer(func=report_rank, num_nodes=2))
    job = client.wait_for_job_status(name, timeout=600)
    assert job.trainer_status is not None
    assert (job.trainer_status.progress_percentage, job.trainer_status.metrics) == (75, {"reported_by": "1"})
    client.delete_job(name)
