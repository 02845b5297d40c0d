"""The container backend on the in-memory FakeEngine: no engine, no image, no network."""

from __future__ import annotations

from typing import Any

import pytest

from kubeflow_trainer.plan import JobPlan, build_plan
from kubeflow_trainer.runtimes import builtin_runtimes
from kubeflow_trainer_containers import ContainerBackend, ContainerBackendConfig, ContainerJobRequest
from kubeflow_trainer_containers.fake import FakeEngine

IMAGE = "localhost/kft-unit:test"


def hello() -> None:
    print("hello")


def make_plan(trainer: Any, *, initializer: Any = None, options: list[Any] | None = None) -> JobPlan:
    """A frozen plan on the built-in torch runtime, as the client builds it."""
    runtime = next(r for r in builtin_runtimes() if r.name == "torch-distributed")
    return build_plan(backend="fake", runtime=runtime, trainer=trainer, initializer=initializer, options=options)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(images={IMAGE})


@pytest.fixture
def backend(engine: FakeEngine, tmp_path) -> ContainerBackend:
    config = ContainerBackendConfig(image=IMAGE, pull_policy="Never", queue_dir=str(tmp_path / "queue"))
    backend = ContainerBackend(config, engine)
    backend.name = "fake"  # what the registry sets from the backend's spec
    return backend


def submit(backend: ContainerBackend, plan: JobPlan) -> ContainerJobRequest:
    """What ``TrainerClient.train`` does: render once, submit that request."""
    request = backend.render(plan)
    backend.submit(request)
    return request
