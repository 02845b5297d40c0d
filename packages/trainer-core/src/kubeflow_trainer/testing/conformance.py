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

The self-policing checks watch a job's steps without asking the backend: through ``/proc`` on this machine by
default (:mod:`kubeflow_trainer.testing.processes`); a backend whose jobs run elsewhere overrides the
``step_pids`` and ``kill_step`` hooks.

A backend that cannot pass a check declares it, visibly, as an expected failure with a reason::

        xfail = {"test_events_are_recorded": "the engine keeps no events"}

The check still runs, as a strict xfail: when the backend starts passing it, the run fails until the
entry is removed. Redefining a kit test in the subclass is refused at class creation: overrides are never
silent.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    DataDirs,
    Event,
    Initializer,
    InvalidRequestError,
    JobFailedError,
    JobNotFoundError,
    JobTimeoutError,
    MaxRestarts,
    Name,
    Preparation,
    RuntimeNotFoundError,
    TrainerClient,
    TrainJob,
    UnsupportedFeatureError,
    UrlDatasetInitializer,
    UrlModelInitializer,
)
from kubeflow_trainer.backend import BackendConfig
from kubeflow_trainer.initializers import DATASET_DIR_ENV, MODEL_DIR_ENV
from kubeflow_trainer.options import MAX_RESTARTS
from kubeflow_trainer.outputs import data_dir_env
from kubeflow_trainer.plan import random_job_name
from kubeflow_trainer.testing import jobs, processes
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

    police_within: ClassVar[float] = 30.0
    """Generous bound (seconds) for a job's other steps to stop after one failed or was killed, with no client
    running. The kit prints the time it measured; the target is a few seconds."""
    job_host: ClassVar[str | None] = None
    """Address at which the jobs' steps reach a server on this machine (default: its primary IPv4 address)."""

    # Hooks a backend whose jobs do not run as processes of this machine overrides --------------------------
    def step_pids(self, client: TrainerClient, name: str, step: str) -> list[int]:
        """Process ids of the live processes of ``step`` of job ``name`` (default: found in ``/proc`` by the
        environment every backend gives a step, see :mod:`kubeflow_trainer.testing.processes`)."""
        return processes.step_pids(name, step)

    def kill_step(self, client: TrainerClient, name: str, step: str) -> None:
        """SIGKILL every process of ``step`` of job ``name`` (a container's or pod's main process included)."""
        processes.kill(self.step_pids(client, name, step))

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
    def test_doctor_passes_where_jobs_run(self, backend_config: BackendConfig | None) -> None:
        """Where the kit's jobs run, ``kubeflow-trainer doctor`` finds nothing failing (warnings allowed)."""
        from kubeflow_trainer.doctor import run_checks

        failing = [c for c in run_checks(self.backend, backend_config) if not c.ok]
        assert not failing, failing

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

    def test_failure_names_the_users_exception_and_line(self, client: TrainerClient, cleanup: list[str]) -> None:
        """A job whose function raises fails with the exception's type, text and the line of the user's file
        that raised it, in JobFailedError and in the failed step's message (no need to read the logs)."""
        name = self.start(client, cleanup, "cause", self.trainer(jobs.missing_module_job))
        with pytest.raises(JobFailedError) as info:
            client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
        source, first = inspect.getsourcelines(jobs.missing_module_job)
        line = first + next(i for i, text in enumerate(source) if text.strip().startswith("import helpers"))
        expected = ("ModuleNotFoundError: No module named 'helpers'", f"line {line}", "import helpers")
        first_line = str(info.value).splitlines()[0]
        assert all(part in first_line for part in expected), str(info.value)
        node = next(s for s in client.get_job(name).steps if s.name == "node-0")
        assert node.status == FAILED
        assert all(part in (node.message or "") for part in expected), node.message

    def test_logs_tail_merged_and_progress_bars(self, client: TrainerClient, cleanup: list[str]) -> None:
        """tail_lines gives the last lines (following too); step="all" merges every node's lines in time order,
        each prefixed [node-N]; a carriage-return progress bar shows its latest state."""
        nodes = 2 if Capability.MULTI_NODE in client.capabilities else 1
        pause = 3.0
        trainer = self.trainer(jobs.logs_job, func_args={"lines": 5, "pause": pause}, num_nodes=nodes)
        name = self.start(client, cleanup, "logs", trainer)
        client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
        lines = self.logs(client, name)
        assert "bar 100%" in lines and not any("bar 0%" in line for line in lines), lines
        assert list(client.get_job_logs(name, tail_lines=2)) == lines[-2:]
        assert list(client.get_job_logs(name, tail_lines=0)) == []
        assert list(client.get_job_logs(name, follow=True, tail_lines=3)) == lines[-3:]
        with pytest.raises(InvalidRequestError, match="tail_lines"):
            client.get_job_logs(name, tail_lines=-1)
        merged = list(client.get_job_logs(name, step="all"))
        for rank in range(nodes):
            own = [m.split("] ", 1)[1] for m in merged if m.startswith(f"[node-{rank}] ")]
            assert own == self.logs(client, name, f"node-{rank}"), merged
        marks = [m for m in merged if " MARK " in m]
        if nodes == 2:
            assert marks == ["[node-0] MARK a", "[node-1] MARK b", "[node-0] MARK c"], merged
        assert list(client.get_job_logs(name, step="all", follow=True)) == merged
        assert list(client.get_job_logs(name, step="all", tail_lines=2)) == merged[-2:]

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

    def test_workspace_is_the_working_directory_on_every_node(
        self, client: TrainerClient, cleanup: list[str], tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """With the workspace capability, a project's files are the working directory of every node and
        importable; its function runs by reference (module constants and helpers work); .gitignored files and
        the default excludes do not ship. Without it, the request is refused before anything starts."""
        root = tmp_path_factory.mktemp("kit-ws")
        package = "kft_kit_workspace"  # a fixed project: the same content (one cache entry / volume) every run
        func = jobs.make_workspace_project(str(root), package)
        try:
            trainer = self.trainer(func, func_args={"label": "kit"}, num_nodes=2, workspace=str(root))
            if Capability.MULTI_NODE not in client.capabilities:
                trainer = self.trainer(func, func_args={"label": "kit"}, workspace=str(root))
            if Capability.WORKSPACE not in client.capabilities:
                before = {j.name for j in client.list_jobs()}
                with pytest.raises(UnsupportedFeatureError, match="workspace"):
                    client.train(trainer=trainer)
                assert {j.name for j in client.list_jobs()} == before
                return
            plan = client.dry_run(trainer=trainer).plan
            assert plan.workspace is not None and "import_module" in plan.files[plan.script or ""], "not by reference"
            shipped = {f.path for f in plan.workspace.files}
            assert f"{package}/train.py" in shipped and "configs/base.yaml" in shipped
            assert not any(p.startswith(("data/", ".git/")) or p.endswith(".bin") for p in shipped), shipped
            name = self.start(client, cleanup, "ws", trainer)
            job = client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
            assert job.status == COMPLETE
            steps = [s.name for s in job.steps if s.name.startswith("node-")]
            for step in steps:
                lines = [line for line in self.logs(client, name, step) if line.startswith("WORKSPACE ")]
                assert lines, self.logs(client, name, step)
                for line in lines:
                    assert "value=42 label=kit lr=0.25 data=False big=False git=False" in line, line
        finally:
            jobs.forget_workspace_project(package)

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

    def _new_client(self, backend_config: BackendConfig | None) -> TrainerClient:
        if backend_config is not None:
            return TrainerClient(backend_config=backend_config)
        return TrainerClient(backend=self.backend)

    def test_outputs_are_fetched_after_the_job_ended(
        self,
        client: TrainerClient,
        cleanup: list[str],
        backend_config: BackendConfig | None,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        """With the outputs capability: what rank 0 wrote to ``$KUBEFLOW_TRAINER_OUTPUT_DIR`` is fetched byte for
        byte by a new client after the job completed, and after a job failed; ``path=`` fetches a part; an
        existing file is not replaced unless ``overwrite=True``; after ``delete_job`` the outputs are gone.
        Without it, ``get_job_outputs`` is refused before anything is created (with output-storage only: for a
        job submitted without an ``OutputStorage``)."""
        root = tmp_path_factory.mktemp("kit-outputs")
        if Capability.OUTPUTS not in client.capabilities:
            name = "kft-no-such-job"
            if Capability.OUTPUT_STORAGE in client.capabilities:  # only jobs given an OutputStorage keep outputs
                name = self.start(client, cleanup, "out-none", self.trainer(jobs.echo_job, func_args={"message": "o"}))
            with pytest.raises(UnsupportedFeatureError, match="outputs"):
                client.get_job_outputs(name, root / "dest")
            assert not (root / "dest").exists()
            return
        size = 3 * 1024 * 1024 + 7
        nodes = 2 if Capability.MULTI_NODE in client.capabilities else 1
        ok = self.start(
            client, cleanup, "out", self.trainer(jobs.checkpoint_job, func_args={"size": size}, num_nodes=nodes)
        )
        bad = self.start(
            client, cleanup, "out-bad", self.trainer(jobs.checkpoint_job, func_args={"size": 1000, "fail": True})
        )
        client.wait_for_job_status(ok, timeout=self.job_timeout, polling_interval=0.5)
        with pytest.raises(JobFailedError):
            client.wait_for_job_status(bad, timeout=self.job_timeout, polling_interval=0.5)
        other = self._new_client(backend_config)
        try:
            paths = other.get_job_outputs(ok, root / "ok")
            rel = {p.relative_to(root / "ok").as_posix() for p in paths}
            assert {"ckpt/model.bin", "metrics.json", "ranks/rank-0.txt"} <= rel, rel
            assert (root / "ok" / "ckpt" / "model.bin").read_bytes() == jobs.checkpoint_bytes(size)
            assert not [p.name for p in (root / "ok").iterdir() if p.name.startswith(".kft-outputs-")]
            part = other.get_job_outputs(ok, root / "part", path="ckpt")
            assert [p.relative_to(root / "part").as_posix() for p in part] == ["ckpt/model.bin"]
            with pytest.raises(InvalidRequestError, match="overwrite"):
                other.get_job_outputs(ok, root / "part", path="ckpt/model.bin")
            (root / "part" / "ckpt" / "model.bin").write_bytes(b"old")
            other.get_job_outputs(ok, root / "part", path="ckpt/model.bin", overwrite=True)
            assert (root / "part" / "ckpt" / "model.bin").read_bytes() == jobs.checkpoint_bytes(size)
            with pytest.raises(InvalidRequestError, match="no file under"):
                other.get_job_outputs(ok, root / "none", path="no/such/file")
            assert not (root / "none").exists()
            other.get_job_outputs(bad, root / "bad")
            assert (root / "bad" / "ckpt" / "model.bin").read_bytes() == jobs.checkpoint_bytes(1000)
            other.delete_job(ok)
            with pytest.raises(JobNotFoundError):
                other.get_job_outputs(ok, root / "gone")
            assert not (root / "gone").exists()
        finally:
            other.close()

    def test_data_dirs_are_read_in_place(
        self, client: TrainerClient, cleanup: list[str], tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """With the data-dirs capability, every node reads a directory of this machine through
        ``$KUBEFLOW_TRAINER_DATA_DIR_<NAME>``; with read-only-data-dirs it cannot write into it. Without the
        capability the option is refused before anything starts."""
        root = tmp_path_factory.mktemp("kit-data")
        data = {"train.txt": b"alpha\n", "sub/val.bin": bytes(range(256)) * 8}
        for rel, content in data.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
        root.chmod(0o755)  # containers may run as another user: they need to read it
        (root / "sub").chmod(0o755)
        variable = data_dir_env("kitdata")
        trainer = self.trainer(jobs.data_dir_job, func_args={"variable": variable})
        option = DataDirs(dirs={"kitdata": str(root)})
        if Capability.DATA_DIRS not in client.capabilities:
            before = {j.name for j in client.list_jobs()}
            with pytest.raises(UnsupportedFeatureError, match="data-dirs"):
                client.train(trainer=trainer, options=[option])
            assert {j.name for j in client.list_jobs()} == before
            return
        name = self.start(client, cleanup, "data", trainer, options=[option])
        client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
        lines = self.logs(client, name)
        assert f"TREE {variable} {jobs.tree_digest(data)}" in lines, lines
        if Capability.READ_ONLY_DATA_DIRS in client.capabilities:
            assert any(line.startswith("DATADIR read-only") for line in lines), lines
        assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == sorted(data)

    # Jobs police themselves -------------------------------------------------------------------------------
    def _wait_pids(self, client: TrainerClient, name: str, step: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.step_pids(client, name, step):
            assert time.monotonic() < deadline, f"{step} of {name} did not start within {timeout:g}s"
            time.sleep(0.1)

    def _failed_job(self, client: TrainerClient, name: str) -> TrainJob:
        """The job once it reads Failed and no step reads Running (a backend may record the root cause first and
        its stopped peers a moment later)."""
        deadline = time.monotonic() + 60
        job = client.get_job(name)
        while (job.status != FAILED or any(s.status == RUNNING for s in job.steps)) and time.monotonic() < deadline:
            time.sleep(0.5)
            job = client.get_job(name)
        assert job.status == FAILED, (job.status, job.steps)
        return job

    def test_a_failed_node_stops_its_peers_with_no_client_running(
        self, client: TrainerClient, cleanup: list[str]
    ) -> None:
        """Node 1 exits 1 (after 4 s) while node 0 sleeps: with no client call after ``train``, node 0 is stopped
        within seconds (watched through its processes only) and the job records node 1 as the root cause."""
        if Capability.MULTI_NODE not in client.capabilities:
            pytest.skip(f"backend '{self.backend}' does not declare the multi-node capability")
        trainer = self.trainer(jobs.node1_fails_node0_sleeps, num_nodes=2)
        name = self.start(client, cleanup, "police", trainer)
        # From here on no client call until node 0 is gone: the job must police itself.
        self._wait_pids(client, name, "node-0", self.job_timeout)
        started = time.monotonic()
        seen_node1 = False
        failed_at = None
        while self.step_pids(client, name, "node-0"):
            now = time.monotonic()
            node1 = bool(self.step_pids(client, name, "node-1"))
            seen_node1 = seen_node1 or node1
            if not node1 and failed_at is None and (seen_node1 or now - started > 5):
                failed_at = now
            limit = (failed_at or started) + self.police_within + (0 if failed_at else self.job_timeout)
            assert now < limit, f"node-0 of {name} still runs {now - (failed_at or started):.1f}s after node-1 ended"
            time.sleep(0.1)
        stopped_after = time.monotonic() - (failed_at or time.monotonic())
        print(f"[kit] {self.backend}: node-0 stopped {stopped_after:.1f}s after node-1 failed (no client running)")
        job = self._failed_job(client, name)
        steps = {s.name: s for s in job.steps}
        assert steps["node-1"].status == FAILED and steps["node-0"].status == FAILED, job.steps
        assert "node-1" in (job.message or ""), job.message

    @contextmanager
    def _endless_initializer_job(self, client: TrainerClient, cleanup: list[str], prefix: str) -> Iterator[str]:
        """A job (its name) whose dataset initializer downloads for ever from a server of this machine that
        sends one byte a second, and whose trainer must not run; skipped without the initializers capability."""
        if Capability.INITIALIZERS not in client.capabilities:
            pytest.skip(f"backend '{self.backend}' does not declare the initializers capability")
        with processes.endless_download() as port:
            host = self.job_host or processes.host_address()
            initializer = Initializer(dataset=UrlDatasetInitializer(storage_uri=f"http://{host}:{port}/endless.bin"))
            trainer = self.trainer(jobs.echo_job, func_args={"message": "must-not-run"})
            yield self.start(client, cleanup, prefix, trainer, initializer=initializer)

    def test_a_killed_initializer_stops_the_job_with_no_client_running(
        self, client: TrainerClient, cleanup: list[str]
    ) -> None:
        """A dataset initializer SIGKILLed in the middle of its download: with no client call, the job's other
        steps stop within seconds, the trainer never runs and the job records the initializer as the cause."""
        with self._endless_initializer_job(client, cleanup, "police-init") as name:
            self._wait_pids(client, name, "dataset-initializer", self.job_timeout)
            time.sleep(1.0)  # downloading now, and the nodes (where they exist already) wait for it
            self.kill_step(client, name, "dataset-initializer")
            killed = time.monotonic()
            steps = ("dataset-initializer", "node-0")
            while any(self.step_pids(client, name, step) for step in steps):
                running = [step for step in steps if self.step_pids(client, name, step)]
                assert time.monotonic() - killed < self.police_within, f"{running} of {name} still run"
                time.sleep(0.1)
            stopped_after = time.monotonic() - killed
        print(f"[kit] {self.backend}: the job stopped {stopped_after:.1f}s after its initializer was killed")
        job = self._failed_job(client, name)
        assert "dataset-initializer" in (job.message or ""), job.message
        assert not any("must-not-run" in line for line in self.logs(client, name)), "the trainer ran"

    def test_preparation_names_the_running_initializer(self, client: TrainerClient, cleanup: list[str]) -> None:
        """While a dataset initializer downloads, ``get_job().preparation`` says the job is initializing and names
        the step, and where the backend counts bytes they grow from one read to the next: what
        ``wait_for_job_status``'s progress display and the CLI show."""
        with self._endless_initializer_job(client, cleanup, "prep-init") as name:
            deadline = time.monotonic() + self.job_timeout
            seen: list[Preparation] = []
            while time.monotonic() < deadline:
                job = client.get_job(name)
                prep = job.preparation
                if prep is not None and prep.phase == "initializing":
                    seen.append(prep)
                    counted = [p.done or 0 for p in seen if p.unit == "bytes"]
                    if len(seen) >= 3 and (len(counted) < 2 or counted[-1] > counted[0]):
                        break
                time.sleep(0.5)
            assert seen, f"{name}: no 'initializing' preparation read while its initializer ran ({job.preparation})"
            last = seen[-1]
            assert "dataset-initializer" in (last.detail or ""), last
            counted = [p.done or 0 for p in seen if p.unit == "bytes"]
            if len(counted) >= 2:
                assert counted[-1] > counted[0], f"{name}: the bytes fetched did not grow: {counted}"
            assert job.status != COMPLETE and not any(
                s.name.startswith("node-") and s.status == COMPLETE for s in job.steps
            )
            print(f"[kit] {self.backend}: while initializing: {last.describe()}")
            client.delete_job(name)

    # Restarts ---------------------------------------------------------------------------------------------
    def test_max_restarts_restarts_a_failed_node(self, client: TrainerClient, cleanup: list[str]) -> None:
        """Node 1 fails once: with ``MaxRestarts(restarts=1)`` the job completes, node 1 shows one restart and a
        ``Restarted`` event says why; with ``MaxRestarts(restarts=0)`` the same job fails. Without the restarts
        capability the option is refused before anything starts."""
        trainer = self.trainer(jobs.node1_fails_once, num_nodes=2)
        if MAX_RESTARTS not in client.capabilities or Capability.MULTI_NODE not in client.capabilities:
            before = {j.name for j in client.list_jobs()}
            with pytest.raises(UnsupportedFeatureError):
                client.train(trainer=trainer, options=[MaxRestarts(restarts=1)])
            assert {j.name for j in client.list_jobs()} == before
            return
        markers: list[str] = []  # the local backend's jobs share this machine's temporary directory
        try:
            name = self.start(client, cleanup, "restart", trainer, options=[MaxRestarts(restarts=1)])
            markers.append(os.path.join(tempfile.gettempdir(), f"kft-kit-once-{name}"))
            job = client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
            steps = {s.name: s for s in job.steps}
            assert steps["node-1"].restarts == 1 and steps["node-0"].restarts == 0, job.steps
            restarted = [e for e in client.get_job_events(name) if e.reason == "Restarted"]
            assert [e.involved_object_name for e in restarted] == ["node-1"], client.get_job_events(name)
            assert "restart 1" in restarted[0].message
            print(f"[kit] {self.backend}: {restarted[0].message}")
            assert any("NODE1 failing once" in line for line in self.logs(client, name, "node-1"))

            name = self.start(client, cleanup, "norestart", trainer, options=[MaxRestarts(restarts=0)])
            markers.append(os.path.join(tempfile.gettempdir(), f"kft-kit-once-{name}"))
            with pytest.raises(JobFailedError):
                client.wait_for_job_status(name, timeout=self.job_timeout, polling_interval=0.5)
            job = self._failed_job(client, name)
            assert "node-1" in (job.message or ""), job.message
            assert all(s.restarts == 0 for s in job.steps), job.steps
        finally:
            for path in markers:
                if os.path.exists(path):
                    os.remove(path)
