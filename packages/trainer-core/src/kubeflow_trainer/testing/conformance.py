"""The conformance kit: :class:`BackendConformance` checks the whole backend contract, real jobs included.

Its engine-less half is :class:`~kubeflow_trainer.testing.contract.BackendContract` (seconds, no engine or
cluster); this class inherits it and adds the checks that run jobs.

Usage in a backend's test module::

    from kubeflow_trainer.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "my-backend"
        torch_available = False            # jobs' environment has no torch: skip the all-reduce part
        trainer_defaults = {"image": "my/image:tag"}   # merged into every CustomTrainer the kit builds

        @pytest.fixture
        def backend_config(self):
            return MyBackendConfig(state_dir=...)   # optional; default: the backend's default config

A backend that cannot pass a check declares it, visibly, as an expected failure with a reason::

        xfail = {"test_events_are_recorded": "the engine keeps no events"}

The check still runs, as a strict xfail: when the backend starts passing it, the run fails until the
entry is removed. Redefining a kit test in the subclass is refused at class creation: overrides are never
silent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from kubeflow_trainer import (
    COMPLETE,
    CREATED,
    FAILED,
    RUNNING,
    AlreadyExistsError,
    Capability,
    CustomTrainer,
    Event,
    Initializer,
    InvalidRequestError,
    JobFailedError,
    JobNotFoundError,
    JobTimeoutError,
    Name,
    RuntimeNotFoundError,
    TrainerClient,
    TrainJob,
    UnsupportedFeatureError,
    UrlDatasetInitializer,
    UrlModelInitializer,
)
from kubeflow_trainer.backend import BackendConfig
from kubeflow_trainer.initializers import DATASET_DIR_ENV, MODEL_DIR_ENV
from kubeflow_trainer.plan import random_job_name
from kubeflow_trainer.testing import jobs
from kubeflow_trainer.testing.contract import BackendContract


def _job_name(prefix: str) -> str:
    return f"kft-{prefix}-{random_job_name()[:6]}"


class BackendConformance(BackendContract):
    """The whole kit: the contract checks (:class:`BackendContract`, no engine needed) plus the checks that
    run real jobs. Subclass it, set :attr:`backend`, and optionally override the fixtures and attributes."""

    _kit_class: ClassVar[bool] = True

    torch_available: ClassVar[bool] = True
    """Whether jobs can ``import torch`` (then the multi-node check runs a gloo all-reduce)."""
    job_timeout: ClassVar[float] = 300
    """Seconds a kit job may take to complete."""
    follow_first_line_within: ClassVar[float] = 3.0
    """Seconds after a streaming job printed its first line by which ``follow`` must have yielded it. The job
    pauses 6 s between its two lines, so a backend that buffers until the end yields both at once and fails."""

    # Fixtures a subclass may override (and backend_config, client, runtime of BackendContract) -------------
    @pytest.fixture
    def cleanup(self, client: TrainerClient) -> Iterator[list[str]]:
        """Names appended here are deleted after the test, whatever happened."""
        names: list[str] = []
        yield names
        for name in names:
            try:
                client.delete_job(name)
            except JobNotFoundError:
                pass

    # Helpers ---------------------------------------------------------------------------------------------
    def start(self, client: TrainerClient, cleanup: list[str], prefix: str, trainer: Any, **kw: Any) -> str:
        """Start a named job and register it for cleanup."""
        name = _job_name(prefix)
        cleanup.append(name)
        options = [Name(name=name), *kw.pop("options", [])]
        returned = client.train(trainer=trainer, options=options, **kw)
        assert returned == name
        return name

    @staticmethod
    def logs(client: TrainerClient, name: str, step: str = "node-0") -> list[str]:
        """All log lines of a step."""
        return list(client.get_job_logs(name, step=step))

    # The contract ----------------------------------------------------------------------------------------
    def test_runtimes(self, client: TrainerClient) -> None:
        """torch-distributed is listed and gettable; an unknown runtime raises RuntimeNotFoundError."""
        runtimes = client.list_runtimes()
        names = [r.name for r in runtimes]
        assert "torch-distributed" in names
        runtime = client.get_runtime("torch-distributed")
        assert runtime.name == "torch-distributed"
        assert runtime.trainer.framework == "torch"
        assert isinstance(client.get_runtime_packages(runtime), list)
        with pytest.raises(RuntimeNotFoundError, match="no-such-runtime"):
            client.get_runtime("no-such-runtime")

    def test_train_completes_with_args_env_and_logs(self, client: TrainerClient, cleanup: list[str]) -> None:
        """func(**func_args) runs with env on top of the backend's environment; status, steps, list agree."""
        trainer = self.trainer(
            jobs.echo_job,
            func_args={"message": "hello $HOME `id` 'q'", "repeat": 2},
            env={"KFT_CONFORMANCE": "yes"},
        )
        name = self.start(client, cleanup, "echo", trainer)
        job = client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
        assert job.status == COMPLETE
        assert isinstance(job, TrainJob)
        assert [s.name for s in job.steps if s.name.startswith("node-")] == ["node-0"]
        assert all(s.status == COMPLETE for s in job.steps)
        assert job.num_nodes == 1
        lines = self.logs(client, name)
        assert "ECHO hello $HOME `id` 'q' 0" in lines, lines
        assert "ECHO hello $HOME `id` 'q' 1" in lines
        assert "ENV KFT_CONFORMANCE=yes" in lines
        assert "PATH-SET True" in lines
        listed = {j.name: j for j in client.list_jobs()}
        assert name in listed
        assert listed[name].status == COMPLETE
        assert client.get_job(name).status == COMPLETE

    def test_logs_follow_streams_lines_as_written(self, client: TrainerClient, cleanup: list[str]) -> None:
        """follow=True yields the first line while the job still runs, then the rest, then stops."""
        pause = 6.0
        name = self.start(client, cleanup, "stream", self.trainer(jobs.streaming_job, func_args={"pause": pause}))
        client.wait_for_job_status(name, {RUNNING, COMPLETE}, timeout=self.job_timeout, polling_interval=0.2)
        seen: list[tuple[float, str]] = []
        for line in client.get_job_logs(name, follow=True):
            seen.append((time.monotonic(), line))
        texts = [t for _, t in seen]
        assert "STREAM first" in texts and "STREAM second" in texts, texts
        t_first = next(t for t, line in seen if line == "STREAM first")
        t_second = next(t for t, line in seen if line == "STREAM second")
        assert t_second - t_first >= pause - self.follow_first_line_within, (
            f"the first line came {t_second - t_first:.2f}s before the second; the job paused {pause}s "
            "between them, so follow buffered instead of streaming"
        )
        assert client.wait_for_job_status(name, timeout=30, polling_interval=0.2).status == COMPLETE

    def test_failure_raises_promptly(self, client: TrainerClient, cleanup: list[str]) -> None:
        """A failing job becomes Failed, wait_for_job_status raises JobFailedError (a RuntimeError), logs kept."""
        name = self.start(client, cleanup, "fail", self.trainer(jobs.failing_job, func_args={"message": "xyz"}))
        with pytest.raises(JobFailedError) as info:
            client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
        assert isinstance(info.value, RuntimeError)
        assert name in str(info.value)
        job = client.get_job(name)
        assert job.status == FAILED
        node = next(s for s in job.steps if s.name == "node-0")
        assert node.status == FAILED
        text = "\n".join(self.logs(client, name))
        assert "STDERR xyz" in text
        assert "conformance failure xyz" in text

    def test_unknown_job_raises_not_found(self, client: TrainerClient) -> None:
        """Every job method raises JobNotFoundError (a LookupError) for an unknown name."""
        missing = _job_name("missing")
        with pytest.raises(JobNotFoundError):
            client.get_job(missing)
        with pytest.raises(JobNotFoundError):
            list(client.get_job_logs(missing))
        with pytest.raises(JobNotFoundError):
            client.get_job_events(missing)
        with pytest.raises(JobNotFoundError):
            client.delete_job(missing)
        with pytest.raises(LookupError):
            client.wait_for_job_status(missing, timeout=2, polling_interval=0.5)

    def test_duplicate_name_is_refused(self, client: TrainerClient, cleanup: list[str]) -> None:
        """A second job with a taken name raises AlreadyExistsError and leaves the first alone."""
        name = self.start(client, cleanup, "dup", self.trainer(jobs.sleeping_job, func_args={"seconds": 30}))
        before = len(client.list_jobs())
        with pytest.raises(AlreadyExistsError, match=name):
            client.train(trainer=self.trainer(jobs.echo_job, func_args={"message": "x"}), options=[Name(name=name)])
        assert len(client.list_jobs()) == before
        assert client.get_job(name).status in (RUNNING, CREATED)

    def test_delete_stops_and_removes(self, client: TrainerClient, cleanup: list[str]) -> None:
        """delete_job on a running job removes it: get_job raises, list_jobs no longer has it."""
        name = self.start(client, cleanup, "del", self.trainer(jobs.sleeping_job, func_args={"seconds": 300}))
        client.wait_for_job_status(name, {RUNNING}, timeout=self.job_timeout, polling_interval=0.2)
        client.delete_job(name)
        with pytest.raises(JobNotFoundError):
            client.get_job(name)
        assert name not in {j.name for j in client.list_jobs()}

    def test_dry_run_has_no_side_effects(self, client: TrainerClient) -> None:
        """dry_run returns the native request and the plan, and creates nothing."""
        name = _job_name("dry")
        before = {j.name for j in client.list_jobs()}
        result = client.dry_run(
            trainer=self.trainer(jobs.echo_job, func_args={"message": "x"}), options=[Name(name=name)]
        )
        assert result.backend == self.backend
        assert result.plan.name == name
        assert result.request is not None
        with pytest.raises(JobNotFoundError):
            client.get_job(name)
        assert {j.name for j in client.list_jobs()} == before

    def test_wait_honours_timeout(self, client: TrainerClient, cleanup: list[str]) -> None:
        """wait_for_job_status raises JobTimeoutError (a TimeoutError) close to the timeout."""
        name = self.start(client, cleanup, "slow", self.trainer(jobs.sleeping_job, func_args={"seconds": 120}))
        started = time.monotonic()
        with pytest.raises(JobTimeoutError) as info:
            client.wait_for_job_status(name, timeout=2, polling_interval=0.5)
        elapsed = time.monotonic() - started
        assert isinstance(info.value, TimeoutError)
        # Not a speed check: it catches waits that ignore the timeout (e.g. counting polls); a loaded machine
        # may add a slow status read after the deadline.
        assert 2 <= elapsed < 12, f"timeout=2 took {elapsed:.2f}s"

    def test_multi_node_environment(self, client: TrainerClient, cleanup: list[str]) -> None:
        """Two nodes get distinct ranks of one world (and a gloo all-reduce agrees), or are refused."""
        func = jobs.allreduce_job if self.torch_available else jobs.rank_job
        trainer = self.trainer(func, num_nodes=2)
        if Capability.MULTI_NODE not in client.capabilities:
            before = {j.name for j in client.list_jobs()}
            with pytest.raises(UnsupportedFeatureError, match="multi-node"):
                client.train(trainer=trainer)
            assert {j.name for j in client.list_jobs()} == before
            return
        name = self.start(client, cleanup, "mn", trainer)
        job = client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
        assert job.num_nodes == 2
        assert [s.name for s in job.steps if s.name.startswith("node-")] == ["node-0", "node-1"]
        ranks: set[str] = set()
        for step in ("node-0", "node-1"):
            lines = self.logs(client, name, step)
            if self.torch_available:
                hits = [line for line in lines if line.startswith("ALLREDUCE")]
                assert hits and all("sum=3.0" in h and "world=2" in h for h in hits), lines
                ranks.update(h.split("rank=")[1].split()[0] for h in hits)
            else:
                hits = [line for line in lines if line.startswith("RANKENV")]
                assert hits and all("WORLD_SIZE=2" in h and "PET_NNODES=2" in h for h in hits), lines
                ranks.update(h.split("RANK=")[1].split()[0] for h in hits)
        assert ranks == {"0", "1"}

    def test_capabilities_are_enforced(self, client: TrainerClient) -> None:
        """A request needing an undeclared capability is refused before anything starts; declared ones render."""
        declared = set(client.capabilities)
        requests = self.capability_requests()
        before = {j.name for j in client.list_jobs()}
        refused = 0
        for label, (base_needs, kwargs) in requests.items():
            needs = set(base_needs)
            if "image" in self.trainer_defaults and isinstance(kwargs["trainer"], CustomTrainer):
                needs.add(Capability.IMAGE)
            if needs <= declared:
                result = client.dry_run(**kwargs)
                assert result.request is not None, label
                continue
            refused += 1
            with pytest.raises(UnsupportedFeatureError) as info:
                client.train(**kwargs)
            assert set(info.value.missing) == {str(c) for c in needs - declared}, label
            assert info.value.backend == self.backend
        assert {j.name for j in client.list_jobs()} == before, "a refused request left a job behind"
        assert refused + sum(1 for n, _ in requests.values() if n <= declared) == len(requests)

    def test_bad_requests_are_refused_before_anything_starts(self, client: TrainerClient) -> None:
        """Invalid input fails with a typed error naming the problem, and creates nothing."""
        before = {j.name for j in client.list_jobs()}
        with pytest.raises(ValueError, match="num_nodes"):
            self.trainer(jobs.echo_job, func_args={"message": "x"}, num_nodes=0)
        with pytest.raises(ValueError, match="DNS-1123"):
            Name(name="Not_A_Valid_Name")
        with pytest.raises(ValueError, match="lambda"):
            CustomTrainer(func=lambda: None)
        with pytest.raises(ValueError, match="func_args"):
            self.trainer(jobs.echo_job, func_args={"message": object()})
        with pytest.raises(InvalidRequestError, match="option"):
            client.train(trainer=self.trainer(jobs.echo_job, func_args={"message": "x"}), options=["not-an-option"])
        with pytest.raises(RuntimeNotFoundError):
            client.train(runtime="no-such-runtime", trainer=self.trainer(jobs.echo_job, func_args={"message": "x"}))
        with pytest.raises(InvalidRequestError, match="trainer"):
            client.train(trainer="not a trainer")  # type: ignore[arg-type]
        assert {j.name for j in client.list_jobs()} == before

    def test_events_are_recorded(self, client: TrainerClient, cleanup: list[str]) -> None:
        """get_job_events returns Event objects, oldest first; with the events capability, not empty."""
        name = self.start(client, cleanup, "ev", self.trainer(jobs.echo_job, func_args={"message": "ev"}))
        client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
        events = client.get_job_events(name)
        assert all(isinstance(e, Event) for e in events)
        times = [e.event_time for e in events]
        assert times == sorted(times)
        if Capability.EVENTS in client.capabilities:
            assert events, "the backend declares events but returned none"
        else:
            assert events == []

    def test_initializers_fill_the_workspace(
        self, client: TrainerClient, cleanup: list[str], tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """Dataset and model steps run before the nodes and fill the directories the function is told about;
        a failing step fails the job, keeps its logs and never starts the trainer. Without the
        initializers capability the request is refused before anything starts."""
        root = tmp_path_factory.mktemp("kit-init")
        dataset = {"train.txt": b"one\ntwo\n", "sub/val.txt": b"three\n"}
        for rel, data in dataset.items():
            (root / "ds" / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "ds" / rel).write_bytes(data)
        (root / "weights.safetensors").write_bytes(b"\x00model\x01" * 100)
        initializer = Initializer(
            dataset=UrlDatasetInitializer(storage_uri=str(root / "ds")),
            model=UrlModelInitializer(storage_uri=f"file://{root / 'weights.safetensors'}"),
        )
        trainer = self.trainer(jobs.tree_job, func_args={"variables": [DATASET_DIR_ENV, MODEL_DIR_ENV]})
        if Capability.INITIALIZERS not in client.capabilities:
            before = {j.name for j in client.list_jobs()}
            with pytest.raises(UnsupportedFeatureError, match="initializers"):
                client.train(trainer=trainer, initializer=initializer)
            assert {j.name for j in client.list_jobs()} == before
            return
        name = self.start(client, cleanup, "init", trainer, initializer=initializer)
        job = client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
        assert [s.name for s in job.steps][:2] == ["dataset-initializer", "model-initializer"]
        assert all(s.status == COMPLETE for s in job.steps), job.steps
        lines = self.logs(client, name)
        assert f"TREE {DATASET_DIR_ENV} {jobs.tree_digest(dataset)}" in lines, lines
        model = {"weights.safetensors": b"\x00model\x01" * 100}
        assert f"TREE {MODEL_DIR_ENV} {jobs.tree_digest(model)}" in lines, lines
        assert any("done:" in line for line in self.logs(client, name, "dataset-initializer"))

        bad = Initializer(
            dataset=UrlDatasetInitializer(storage_uri=str(root / "ds")),
            model=UrlModelInitializer(storage_uri="http://127.0.0.1:9/no-such-model.bin"),
        )
        name = self.start(client, cleanup, "init-bad", trainer, initializer=bad)
        with pytest.raises(JobFailedError):
            client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
        job = client.get_job(name)
        step = {s.name: s for s in job.steps}["model-initializer"]
        assert step.status == FAILED and "127.0.0.1:9" in (step.message or ""), job.steps
        assert "model-initializer" in (job.message or "")
        assert any("cannot reach" in line for line in self.logs(client, name, "model-initializer"))
        assert not any(line.startswith("TREE") for line in self.logs(client, name)), "the trainer ran"

    def test_jobs_outlive_the_client(
        self, client: TrainerClient, cleanup: list[str], backend_config: BackendConfig | None
    ) -> None:
        """With the persistence capability, a new client sees, streams and deletes an earlier client's job."""
        if Capability.PERSISTENCE not in client.capabilities:
            pytest.skip(f"backend '{self.backend}' does not declare the persistence capability")
        name = self.start(client, cleanup, "persist", self.trainer(jobs.echo_job, func_args={"message": "p"}))
        client.close()
        other = (
            TrainerClient(backend_config=backend_config)
            if backend_config is not None
            else TrainerClient(backend=self.backend)
        )
        try:
            job = other.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
            assert job.status == COMPLETE
            assert name in {j.name for j in other.list_jobs()}
            assert "ECHO p 0" in list(other.get_job_logs(name, follow=True))
            other.delete_job(name)
            with pytest.raises(JobNotFoundError):
                other.get_job(name)
        finally:
            other.close()
