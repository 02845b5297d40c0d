"""The FakeEngine passes the engine kit the real Docker and Podman engines pass, and its own controls work."""

from __future__ import annotations

import pytest
from conftest import IMAGE

from kubeflow_trainer.errors import BackendError
from kubeflow_trainer_containers.fake import FakeContainer, FakeEngine
from kubeflow_trainer_containers.testing import EXIT_CODE, EXIT_COMMAND, OUTPUT, EngineConformance


def play(container: FakeContainer, engine: FakeEngine) -> None:
    """The kit's commands, played: EXIT_COMMAND prints and exits; anything else keeps running."""
    if list(container.spec.command) == EXIT_COMMAND:
        engine.finish(container.id, EXIT_CODE, f"{OUTPUT}\n")


class TestFakeEngine(EngineConformance):
    @pytest.fixture
    def engine(self) -> FakeEngine:
        fake = FakeEngine(images={IMAGE})
        fake.on_start = lambda c: play(c, fake)
        return fake

    @pytest.fixture
    def image(self) -> str:
        return IMAGE


def test_faults_fire_on_the_chosen_call_only():
    engine = FakeEngine()
    engine.fail("create_volume", BackendError("full"), after=1)
    engine.create_volume("a", {})
    with pytest.raises(BackendError, match="full"):
        engine.create_volume("b", {})
    engine.create_volume("c", {})
    assert sorted(engine.volumes) == ["a", "c"]
    with pytest.raises(ValueError, match="not a ContainerEngine method"):
        engine.fail("no_such_method", BackendError("x"))


def test_missing_things_are_named():
    engine = FakeEngine()
    with pytest.raises(KeyError, match="no container 'x'"):
        engine.container("x")
    with pytest.raises(BackendError, match="no such container"):
        engine.put_files("x", "/workspace", {})
    engine.create_network("n", {})
    with pytest.raises(BackendError, match="already exists"):
        engine.create_network("n", {})
