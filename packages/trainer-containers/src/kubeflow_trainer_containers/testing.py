"""The engine-level test kit: what every :class:`~kubeflow_trainer_containers.engine.ContainerEngine` must do,
as an abstract pytest suite (in the style of fsspec's). A distribution subclasses :class:`EngineConformance`
in its tests and provides the ``engine`` fixture (and ``image``, an image with ``sh``, present locally)::

    class TestDockerEngine(EngineConformance):
        @pytest.fixture
        def engine(self):
            ...

The Docker and Podman distributions run it against the real engines, trainer-containers against
:class:`~kubeflow_trainer_containers.fake.FakeEngine` (whose fixture plays :data:`EXIT_COMMAND` and
:data:`SLEEP_COMMAND`), so the fake and the engines are held to the same behaviour.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeflow_trainer.errors import BackendError
from kubeflow_trainer_containers.engine import ContainerEngine, ContainerInfo
from kubeflow_trainer_containers.request import ContainerSpec

EXIT_CODE = 3
OUTPUT = "kit-output"
EXIT_COMMAND = ["sh", "-c", f"echo {OUTPUT}; exit {EXIT_CODE}"]
"""Prints :data:`OUTPUT` and exits with :data:`EXIT_CODE`."""
SLEEP_COMMAND = ["sh", "-c", "trap 'exit 143' TERM; sleep 60 & wait"]
"""Runs until stopped."""
LABEL = "trainer.kubeflow.org/engine-kit"


class EngineConformance:
    """What the container backend relies on from an engine. Subclasses provide ``engine`` and ``image``."""

    wait_timeout: float = 60.0

    @pytest.fixture
    def engine(self) -> ContainerEngine:
        raise NotImplementedError("provide an `engine` fixture returning the ContainerEngine under test")

    @pytest.fixture
    def image(self) -> str:
        raise NotImplementedError("provide an `image` fixture: a local image with /bin/sh")

    @pytest.fixture
    def run_id(self, engine: ContainerEngine) -> Iterator[str]:
        """A unique name prefix; whatever the test left with it is removed afterwards."""
        run = f"kft-kit-{uuid.uuid4().hex[:8]}"
        yield run
        labels = {LABEL: run}
        for info in engine.list_containers(labels):
            engine.remove_container(info.id)
        for network in engine.list_networks(labels):
            engine.remove_network(network)
        for volume in engine.list_volumes(labels):
            engine.remove_volume(volume)

    def spec(self, run_id: str, image: str, command: list[str], suffix: str = "c") -> ContainerSpec:
        """A container on the run's network and volume."""
        return ContainerSpec(
            name=f"{run_id}-{suffix}",
            image=image,
            command=command,
            labels={LABEL: run_id, f"{LABEL}-step": suffix},
            env={"KIT": "1"},
            network=run_id,
            hostname=f"{run_id}-{suffix}",
            volumes={run_id: "/workspace"},
        )

    def prepare(self, engine: ContainerEngine, run_id: str) -> None:
        engine.create_volume(run_id, {LABEL: run_id})
        engine.create_network(run_id, {LABEL: run_id})

    def wait_exited(self, engine: ContainerEngine, run_id: str, container: str) -> ContainerInfo:
        deadline = time.monotonic() + self.wait_timeout
        while True:
            (info,) = [c for c in engine.list_containers({LABEL: run_id}) if c.id == container]
            if info.state in ("exited", "stopped", "dead") or time.monotonic() > deadline:
                return info
            time.sleep(0.1)

    def test_ping(self, engine: ContainerEngine) -> None:
        engine.ping()

    def test_unknown_image_is_absent(self, engine: ContainerEngine) -> None:
        assert engine.image_exists(f"localhost/kft-kit-absent-{uuid.uuid4().hex[:8]}:none") is False

    def test_present_image_exists(self, engine: ContainerEngine, image: str) -> None:
        assert engine.image_exists(image) is True

    def test_networks_and_volumes_are_found_by_label_and_removed(self, engine: ContainerEngine, run_id: str) -> None:
        self.prepare(engine, run_id)
        assert engine.list_networks({LABEL: run_id}) == [run_id]
        assert engine.list_volumes({LABEL: run_id}) == [run_id]
        assert engine.list_networks({LABEL: run_id + "-other"}) == []
        engine.remove_network(run_id)
        engine.remove_volume(run_id)
        assert engine.list_networks({LABEL: run_id}) == [] and engine.list_volumes({LABEL: run_id}) == []
        engine.remove_network(run_id)  # removing what is gone is no error
        engine.remove_volume(run_id)

    def test_container_runs_to_its_exit_code_with_files_and_logs(
        self, engine: ContainerEngine, image: str, run_id: str
    ) -> None:
        self.prepare(engine, run_id)
        container = engine.create_container(self.spec(run_id, image, EXIT_COMMAND))
        (created,) = engine.list_containers({LABEL: run_id})
        assert created.id == container and created.state == "created" and created.labels[LABEL] == run_id
        engine.put_files(container, "/workspace", {"a/b.txt": "hello"})
        assert engine.get_file(container, "/workspace/a/b.txt") == b"hello"
        assert engine.get_file(container, "/workspace/none.txt") is None
        engine.start_container(container)
        info = self.wait_exited(engine, run_id, container)
        assert info.state in ("exited", "stopped") and info.exit_code == EXIT_CODE, info
        assert info.started_at is not None and info.finished_at is not None
        assert OUTPUT in b"".join(engine.logs(container, follow=False)).decode()
        assert OUTPUT in b"".join(engine.logs(container, follow=True)).decode()  # ends: the container has exited
        engine.remove_container(container)
        assert engine.list_containers({LABEL: run_id}) == []
        engine.remove_container(container)  # removing what is gone is no error

    def test_summaries_agree_with_the_full_list(self, engine: ContainerEngine, image: str, run_id: str) -> None:
        """list_container_summaries (one list call, what list_jobs reads) reports the same containers, states,
        labels and exit codes as list_containers."""
        self.prepare(engine, run_id)
        exited = engine.create_container(self.spec(run_id, image, EXIT_COMMAND, "x"))
        engine.create_container(self.spec(run_id, image, EXIT_COMMAND, "y"))  # created, never started
        engine.start_container(exited)
        self.wait_exited(engine, run_id, exited)
        full = {c.id: c for c in engine.list_containers({LABEL: run_id})}
        summaries = {c.id: c for c in engine.list_container_summaries({LABEL: run_id})}
        assert set(summaries) == set(full) and len(full) == 2

        def ended_as_one(state: str) -> str:  # Podman 4.3's inspect says "stopped" for a moment, its list "exited"
            return "exited" if state == "stopped" else state

        for cid, info in full.items():
            summary = summaries[cid]
            assert (summary.name, summary.labels, ended_as_one(summary.state)) == (
                info.name,
                info.labels,
                ended_as_one(info.state),
            ), (summary, info)
            assert summary.exit_code == (info.exit_code if info.state in ("exited", "stopped") else None)
            assert abs((summary.created - info.created).total_seconds()) < 1
        assert [c.name for c in engine.list_container_summaries({LABEL: run_id, f"{LABEL}-step": "x"})] == [
            f"{run_id}-x"
        ]

    def test_stop_ends_a_running_container(self, engine: ContainerEngine, image: str, run_id: str) -> None:
        self.prepare(engine, run_id)
        container = engine.create_container(self.spec(run_id, image, SLEEP_COMMAND))
        engine.start_container(container)
        (running,) = engine.list_containers({LABEL: run_id})
        assert running.state == "running"
        engine.stop_container(container, 1)
        assert self.wait_exited(engine, run_id, container).state in ("exited", "stopped")
        engine.stop_container(container, 1)  # stopping what has stopped is no error

    def test_duplicate_container_name_is_a_backend_error(
        self, engine: ContainerEngine, image: str, run_id: str
    ) -> None:
        self.prepare(engine, run_id)
        engine.create_container(self.spec(run_id, image, EXIT_COMMAND))
        with pytest.raises(BackendError):
            engine.create_container(self.spec(run_id, image, EXIT_COMMAND))

    def test_events_report_the_containers_lifecycle(self, engine: ContainerEngine, image: str, run_id: str) -> None:
        self.prepare(engine, run_id)
        container = engine.create_container(self.spec(run_id, image, EXIT_COMMAND))
        created = engine.list_containers({LABEL: run_id})[0].created
        engine.start_container(container)
        info = self.wait_exited(engine, run_id, container)
        assert info.finished_at is not None
        events = engine.events({LABEL: run_id}, created.replace(microsecond=0), info.finished_at)
        actions = {e.action for e in events}
        assert "start" in actions and actions & {"die", "died"}, actions  # Podman says "died"
        assert all(e.container == f"{run_id}-c" for e in events)


JOB_LABEL = "trainer.kubeflow.org/trainjob-name"


def _write_output() -> None:  # a job function: shipped by source, so self-contained
    import os

    with open(os.path.join(os.environ["KUBEFLOW_TRAINER_OUTPUT_DIR"], f"rank-{os.environ['RANK']}.txt"), "w") as fh:
        fh.write("done")
    print("wrote", os.environ["RANK"])


def check_finished_job_releases_its_network(config: Any, out_dir: Path) -> None:
    """A finished 2-node job's network is removed without delete_job (here by a second client reading the job;
    submissions and queue runners do it too): its containers stay, so status, logs and outputs still read from
    a client with no state of its own; then delete_job removes everything. Run by each engine distribution's
    tests against its real engine (``config``: its backend config)."""
    from kubeflow_trainer import CustomTrainer, Name, TrainerClient

    name = f"kft-release-{uuid.uuid4().hex[:6]}"
    with TrainerClient(backend_config=config) as client:
        engine: ContainerEngine = client.backend.engine  # type: ignore[attr-defined]
        client.train(trainer=CustomTrainer(func=_write_output, num_nodes=2), options=[Name(name=name)])
        try:
            assert client.wait_for_job_status(name, timeout=180, polling_interval=0.5).status == "Complete"
            with TrainerClient(backend_config=config) as other:  # no per-client state: the engine's
                job = other.get_job(name)
                assert job.status == "Complete" and [s.status for s in job.steps] == ["Complete", "Complete"]
                assert engine.list_networks({JOB_LABEL: name}) == []
                assert "wrote 0" in list(other.get_job_logs(name))
                files = other.get_job_outputs(name, out_dir / "out")
                assert sorted(p.name for p in files) == ["rank-0.txt", "rank-1.txt"]
        finally:
            client.delete_job(name)
        assert engine.list_containers({JOB_LABEL: name}) == []
