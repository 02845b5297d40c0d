"""The container backend's logic on the FakeEngine: render/submit, statuses and root causes, cleanup, logs,
events, deletion. The same backend runs on the real engines in the Docker and Podman distributions' tests."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import IMAGE, hello, make_plan, submit

from kubeflow_trainer.errors import (
    AlreadyExistsError,
    BackendError,
    BackendUnavailableError,
    InvalidRequestError,
    JobNotFoundError,
    StepNotFoundError,
)
from kubeflow_trainer.options import Labels, Name
from kubeflow_trainer.runtimes import builtin_runtimes
from kubeflow_trainer.types import CustomTrainer, HuggingFaceDatasetInitializer, Initializer, JobStatus
from kubeflow_trainer_containers import ContainerBackend, ContainerBackendConfig, ContainerJobRequest
from kubeflow_trainer_containers.backend import GATE_EXIT
from kubeflow_trainer_containers.engine import LayerProgress
from kubeflow_trainer_containers.fake import KILLED
from kubeflow_trainer_containers.pullprogress import PullProgress
from kubeflow_trainer_containers.request import SECRET_PLACEHOLDER


def two_nodes(name: str = "job") -> object:
    return make_plan(CustomTrainer(func=hello, num_nodes=2), options=[Name(name)])


def with_initializer(name: str = "ini", cache: str | None = None) -> object:
    dataset = HuggingFaceDatasetInitializer(storage_uri="hf://org/data", access_token="hf_secret", cache=cache)
    return make_plan(CustomTrainer(func=hello), initializer=Initializer(dataset=dataset), options=[Name(name)])


# Render / submit ----------------------------------------------------------------------------------------
def test_render_is_pure_and_deterministic(backend, engine):
    plan = two_nodes()
    first = backend.render(plan)
    assert isinstance(first, ContainerJobRequest)
    assert engine.calls == [] and engine.objects() == (set(), set(), set())  # no engine call at all
    assert backend.render(plan) == first
    assert [c.name for c in first.containers] == ["job-node-0", "job-node-1"]
    assert first.engine_requests[1]["fake"] is True and first.engine_requests[1]["name"] == "job-node-1"
    assert "--master-addr=job-node-0" in first.containers[1].command


def test_submit_creates_exactly_the_request(backend, engine):
    request = submit(backend, two_nodes())
    assert engine.objects() == ({"job-node-0", "job-node-1"}, {"kft-job"}, {"kft-job", "kft-job-outputs"})
    assert engine.networks["kft-job"] == dict(request.network.labels)
    for spec in request.containers:
        created = engine.container(spec.name)
        assert created.spec == spec and created.state == "running"
        assert created.env == spec.environment(reveal_secrets=True)
    node0 = engine.container("job-node-0")
    assert set(request.files) <= {p.removeprefix("/workspace/") for p in node0.files}
    assert engine.calls.index("put_files") < engine.calls.index("start_container")  # files before any start


def test_a_one_node_job_uses_the_default_network_and_creates_none(backend, engine):
    """No peers to resolve: no per-job network (Docker's address pools hold about 30 of them, and a finished
    job's network would stay until delete_job); the engines put the containers on their default bridge."""
    request = submit(backend, with_initializer("one"))
    assert request.network is None and all(spec.network is None for spec in request.containers)
    assert "create_network" not in engine.calls and engine.objects()[1] == set()
    assert engine.objects()[0] == {"one-dataset-initializer", "one-node-0"}
    backend.delete_job("one")
    assert engine.objects()[:2] == (set(), set())


def test_secrets_reach_only_the_engine(backend, engine):
    request = submit(backend, with_initializer())
    step = request.container("ini-dataset-initializer")
    assert "hf_secret" not in request.model_dump_json() and "hf_secret" not in repr(request)
    assert SECRET_PLACEHOLDER in json.dumps(request.engine_requests)
    assert "hf_secret" in engine.container("ini-dataset-initializer").env.values()
    assert not any("hf_secret" in c.env.values() for c in engine.containers.values() if c.name.endswith("node-0"))
    assert step.secret_env and all("hf_secret" not in f for f in request.files.values())


def test_every_step_runs_under_the_watcher_and_nodes_wait_for_initializers(backend):
    request = backend.render(with_initializer())
    node = request.container("ini-node-0")
    assert node.command[:2] == ["/bin/sh", "-c"] and node.command[3] == "kft-watch"
    assert node.command[4:9] == [
        "node-0",
        "/workspace/.kft/watch",
        "/workspace/.kft/steps",
        "dataset-initializer",
        "--",
    ]
    init = request.container("ini-dataset-initializer")
    assert init.command[3:9] == [
        "kft-watch",
        "dataset-initializer",
        "/workspace/.kft/watch",
        "/workspace/.kft/steps",
        "",
        "--",
    ]
    assert "PEER_EXIT" in request.files[".kft/peerwatch.py"]
    assert [c.name for c in request.containers] == ["ini-dataset-initializer", "ini-node-0"]
    assert ".kft/initializer.py" in request.files and ".kft/dataset-initializer.json" in request.files


def test_packages_use_the_launcher(backend):
    plan = make_plan(CustomTrainer(func=hello, packages_to_install=["six"], pip_index_urls=["https://i/simple"]))
    request = backend.render(plan)
    assert request.containers[0].command[9:12] == ["python3", "/workspace/.kft/launch.py", "torchrun"]
    assert "PIP_FAILED" in request.files[".kft/launch.py"]


def test_duplicate_name_is_refused_and_changes_nothing(backend, engine):
    submit(backend, two_nodes())
    before = engine.objects()
    with pytest.raises(AlreadyExistsError):
        submit(backend, two_nodes())
    assert engine.objects() == before


@pytest.mark.parametrize(
    ("method", "after"),
    [
        ("create_volume", 0),
        ("create_volume", 1),
        ("create_network", 0),
        ("create_container", 0),
        ("create_container", 1),
        ("put_files", 0),
        ("start_container", 0),
        ("start_container", 1),
    ],
)
def test_failed_submit_leaves_nothing(backend, engine, method, after):
    """Whichever call fails (the volumes and the network, and the containers' starts, go to the engine at
    once), what the others made is removed."""
    engine.fail(method, BackendError(f"{method} broke"), after=after)
    with pytest.raises(BackendError, match=f"{method} broke"):
        submit(backend, two_nodes())
    assert engine.objects() == (set(), set(), set())


def test_nodes_are_started_at_once(backend, engine):
    """Both nodes' starts are in flight together: a start waits for the other one (serial starts would
    break the barrier after its timeout)."""
    both = threading.Barrier(2, timeout=10)
    engine.on_start = lambda container: both.wait()
    submit(backend, two_nodes())
    assert {c.state for c in engine.containers.values()} == {"running"}


def test_failed_submit_keeps_an_existing_cache_and_removes_a_new_one(backend, engine):
    engine.create_volume("kft-cache-kept", {"trainer.kubeflow.org/cache": "kept", "trainer.kubeflow.org/backend": "x"})
    engine.fail("start_container", BackendError("no"))
    with pytest.raises(BackendError):
        submit(backend, with_initializer(cache="kept"))
    assert engine.objects() == (set(), set(), {"kft-cache-kept"})
    engine.fail("start_container", BackendError("no"))
    with pytest.raises(BackendError):
        submit(backend, with_initializer(cache="fresh"))
    assert engine.objects() == (set(), set(), {"kft-cache-kept"})


def test_unreachable_engine_fails_before_anything(backend, engine):
    engine.reachable = False
    with pytest.raises(BackendUnavailableError):
        submit(backend, two_nodes())
    engine.reachable = True
    assert engine.objects() == (set(), set(), set())


# Images ----------------------------------------------------------------------------------------------
def config(**fields: object) -> ContainerBackendConfig:
    return ContainerBackendConfig(**fields)  # type: ignore[arg-type]


def test_missing_image_with_never_is_refused(engine):
    backend = ContainerBackend(config(image="other:1", pull_policy="never"), engine)
    with pytest.raises(InvalidRequestError, match="pull_policy is Never"):
        submit(backend, two_nodes())
    assert engine.objects() == (set(), set(), set())


def test_if_not_present_pulls_and_a_failed_pull_names_the_reason(engine):
    engine.pullable.add("pulled:1")
    submit(ContainerBackend(config(image="pulled:1"), engine), two_nodes("a"))
    assert "pull_image" in engine.calls
    with pytest.raises(InvalidRequestError, match=r"could not be pulled \(pull access denied"):
        submit(ContainerBackend(config(image="nowhere:1", pull_policy="Always"), engine), two_nodes("b"))


def test_a_pull_is_shown_with_layer_counts_and_megabytes_while_train_waits(engine, capsys, monkeypatch):
    monkeypatch.setenv("KUBEFLOW_TRAINER_PROGRESS", "plain")
    engine.pullable.add("pulled:2")
    engine.pull_reports["pulled:2"] = [
        LayerProgress("base", "present"),
        LayerProgress("top", "waiting"),
        LayerProgress("top", "downloading", 5_000_000, 20_000_000),
        LayerProgress("top", "extracting"),
        LayerProgress("top", "done"),
    ]
    submit(ContainerBackend(config(image="pulled:2"), engine), two_nodes("p"))
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("[p] ")]
    assert lines == [
        "[p] pulling image (pulled:2)",
        "[p] pulling image: 1/1 layers (pulled:2)",
        "[p] pulling image: 1/2 layers (pulled:2)",
        "[p] pulling image: 2/2 layers (pulled:2, 20.0/20.0 MB)",
    ]


def test_pull_progress_counts_bytes_of_the_layers_it_downloads():
    pull = PullProgress("img:1")
    for report in (
        LayerProgress("a", "present"),
        LayerProgress("b", "downloading", 1_000_000, 4_000_000),
        LayerProgress("c", "downloading", 0, 2_000_000),
        LayerProgress("c", "downloading", 2_000_000, 2_000_000),
        LayerProgress("c", "extracting"),
    ):
        pull.feed(report)
    prep = pull.preparation()
    assert (prep.phase, prep.done, prep.total, prep.unit) == ("pulling image", 1, 3, "layers")
    assert prep.describe() == "pulling image: 1/3 layers (img:1, 3.0/6.0 MB)"


def test_no_image_anywhere_is_an_invalid_request(engine):
    runtime = next(r for r in builtin_runtimes() if r.name == "torch-distributed")
    no_image = runtime.model_copy(update={"trainer": runtime.trainer.model_copy(update={"image": None})})
    backend = ContainerBackend(config(image=None), engine)
    plan = make_plan(CustomTrainer(func=hello))
    object.__setattr__(plan, "runtime", no_image)  # a runtime source whose runtime names no image
    with pytest.raises(InvalidRequestError, match="no image"):
        backend.render(plan)


# Statuses --------------------------------------------------------------------------------------------
def test_statuses_follow_the_containers(backend, engine):
    submit(backend, two_nodes())
    assert backend.get_job("job").status is JobStatus.RUNNING
    engine.finish("job-node-0", 0)
    assert backend.get_job("job").status is JobStatus.RUNNING
    engine.finish("job-node-1", 0, "done\n")
    job = backend.get_job("job")
    assert job.status is JobStatus.COMPLETE and [s.exit_code for s in job.steps] == [0, 0]


def test_created_job_is_created(backend, engine):
    request = backend.render(two_nodes())
    backend.submit(request)
    for c in engine.containers.values():
        c.state, c.started_at = "created", None
    assert backend.get_job("job").status is JobStatus.CREATED


def test_failed_node_fails_the_job_and_stops_the_others(backend, engine):
    submit(backend, two_nodes())
    engine.finish("job-node-1", 3)
    job = backend.get_job("job")
    assert job.status is JobStatus.FAILED
    assert job.message == "node-1 failed: exited with code 3"
    assert engine.container("job-node-0").state == "exited"  # reconciled: the other node was stopped
    assert job.steps[0].message == "stopped because node-1 failed"
    assert job.steps[1].message == "exited with code 3" and job.steps[1].exit_code == 3


def test_killed_node_is_the_root_cause(backend, engine):
    submit(backend, two_nodes())
    engine.kill("job-node-0")
    job = backend.get_job("job")
    assert job.status is JobStatus.FAILED
    assert job.message.startswith(
        f"node-0 failed: killed by SIGKILL (exit code {KILLED}), most often because it ran out"
    )


def test_oom_killed_node_says_out_of_memory(backend, engine):
    submit(backend, two_nodes())
    engine.kill("job-node-1", oom=True)
    job = backend.get_job("job")
    assert "ran out of memory (OOMKilled, exit code 137)" in (job.steps[1].message or "")
    assert "memory limit" in (job.message or "")


def test_error_file_names_the_users_exception(backend, engine):
    submit(backend, two_nodes())
    env = engine.container("job-node-1").env
    error = {
        "message": {
            "message": "ModuleNotFoundError: No module named 'helpers'",
            "extraInfo": {
                "timestamp": "1",
                "kft": {
                    "type": "ModuleNotFoundError",
                    "text": "No module named 'helpers'",
                    "file": "/u/t.py",
                    "line": 7,
                    "function": "train",
                    "code": "import helpers",
                    "rank": 1,
                    "time": 1.5,
                },
            },
        }
    }
    engine.write_file("job-node-1", env["TORCHELASTIC_ERROR_FILE"], json.dumps(error))
    engine.finish("job-node-1", 1)
    job = backend.get_job("job")
    cause = (
        "rank 1: ModuleNotFoundError: No module named 'helpers' (File \"/u/t.py\", line 7, in train: import helpers)"
    )
    assert job.steps[1].message == cause
    assert job.message == f"node-1 failed: {cause}"


def test_traceback_in_the_log_when_there_is_no_error_file(backend, engine):
    submit(backend, two_nodes())
    log = (
        'Traceback (most recent call last):\n  File "/workspace/train.py", line 3, in train\n    x = 1 / 0\n'
        "ZeroDivisionError: division by zero\n"
    )
    engine.finish("job-node-0", 1, logs=log)
    assert backend.get_job("job").steps[0].message == (
        'ZeroDivisionError: division by zero (File "/workspace/train.py", line 3, in train: x = 1 / 0)'
    )


def test_failed_package_install_names_the_requirement(backend, engine):
    submit(backend, two_nodes())
    engine.finish("job-node-0", 97, logs="ERROR: No matching distribution found for nopkg==9\n")
    message = backend.get_job("job").steps[0].message or ""
    assert message.startswith("installing packages_to_install failed: the requirement 'nopkg==9' could not be resolved")


def test_removed_node_fails_the_job(backend, engine):
    submit(backend, two_nodes())
    engine.remove_container(engine.container("job-node-1").id)
    job = backend.get_job("job")
    assert job.status is JobStatus.FAILED and job.message.startswith("1 of the job's 2 node containers exist")


def test_failed_initializer_is_the_root_cause(backend, engine):
    submit(backend, with_initializer())
    engine.finish("ini-node-0", GATE_EXIT)  # the gate saw the .failed marker first
    assert backend.get_job("ini").status is JobStatus.RUNNING  # the step's own exit is a moment behind
    engine.finish("ini-dataset-initializer", 1, "[kubeflow-trainer] error: repository org/data not found\n")
    job = backend.get_job("ini")
    assert job.status is JobStatus.FAILED
    assert job.message == "dataset-initializer failed: repository org/data not found"
    steps = {s.name: s for s in job.steps}
    assert steps["ini-node-0".removeprefix("ini-")].message == "not started because dataset-initializer failed"
    assert [s.name for s in job.steps] == ["dataset-initializer", "node-0"]


def test_a_failed_initializer_fails_the_nodes_still_at_their_gate(backend, engine):
    """The initializer's exit is seen first: the job reads Failed, and so does the node waiting at its gate
    (it exits the moment it sees the failure; it never starts the trainer)."""
    submit(backend, with_initializer())
    engine.finish("ini-dataset-initializer", 1, "[kubeflow-trainer] error: repository org/data not found\n")
    assert engine.container("ini-node-0").state == "running"
    job = backend.get_job("ini")
    assert job.status is JobStatus.FAILED
    node = {s.name: s for s in job.steps}["node-0"]
    assert node.status is JobStatus.FAILED
    assert node.message == "not started because dataset-initializer failed"


def test_trainer_status_comes_from_the_status_file(backend, engine):
    submit(backend, two_nodes())
    assert backend.get_job("job").trainer_status is None
    status = {"progressPercentage": 40, "metrics": [{"name": "loss", "value": "1"}]}
    engine.write_file("job-node-0", "/workspace/.kft/trainer-status.json", json.dumps({"trainerStatus": status}))
    trainer_status = backend.get_job("job").trainer_status
    assert trainer_status is not None and trainer_status.progress_percentage == 40
    engine.fail("get_file", BackendError("gone"))
    assert backend.get_job("job").trainer_status is None


# Reading and deleting --------------------------------------------------------------------------------
def test_logs_events_and_list(backend, engine):
    submit(backend, make_plan(CustomTrainer(func=hello), options=[Name("one"), Labels({"team": "a"})]))
    engine.finish("one-node-0", 0, b"line 1\r\nline 2")
    assert list(backend.get_job_logs("one")) == ["line 1", "line 2"]
    with pytest.raises(StepNotFoundError):
        backend.get_job_logs("one", step="node-7")
    reasons = [e.reason for e in backend.get_job_events("one")]
    assert reasons == ["Create", "Start", "Die"]
    assert "(exit code 0)" in backend.get_job_events("one")[-1].message
    jobs = backend.list_jobs()
    assert [j.name for j in jobs] == ["one"] and jobs[0].labels == {"team": "a"}
    runtime = jobs[0].runtime
    assert runtime is not None and [j.name for j in backend.list_jobs(runtime)] == ["one"]
    assert backend.list_jobs(runtime.model_copy(update={"name": "other"})) == []


def test_list_jobs_is_one_engine_list_and_a_full_read_of_failed_jobs_only(backend, engine):
    """list_jobs reads the engine's container list once; only the failed job is read again in full, so its
    message still has what the list does not carry (the OOM kill)."""
    for name in ("done", "running", "oom"):
        submit(backend, make_plan(CustomTrainer(func=hello), options=[Name(name)]))
    engine.finish("done-node-0", 0)
    engine.kill("oom-node-0", oom=True)
    engine.calls.clear()
    jobs = {j.name: j for j in backend.list_jobs()}
    assert {n: j.status for n, j in jobs.items()} == {"done": "Complete", "running": "Running", "oom": "Failed"}
    assert "OOMKilled" in (jobs["oom"].steps[0].message or "")
    listing = [call for call in engine.calls if call.startswith("list_")]
    assert listing == ["list_container_summaries", "list_containers"]  # the failed job's root cause reads follow


def test_missing_job_is_not_found(backend):
    for call in (backend.get_job, backend.get_job_logs, backend.get_job_events, backend.delete_job):
        with pytest.raises(JobNotFoundError):
            call("nope")


def test_delete_removes_everything_but_the_caches(backend, engine):
    submit(backend, with_initializer(cache="c1"))
    backend.delete_job("ini")
    assert engine.objects() == (set(), set(), {"kft-cache-c1"})
    backend.delete_cache("c1")
    assert engine.objects() == (set(), set(), set())
    with pytest.raises(InvalidRequestError, match="no initializer cache 'c1'"):
        backend.delete_cache("c1")


def test_auto_remove_false_keeps_the_workspace_and_outputs(engine):
    backend = ContainerBackend(config(image=IMAGE, auto_remove=False), engine)
    submit(backend, two_nodes())
    backend.delete_job("job")
    assert engine.objects() == (set(), set(), {"kft-job", "kft-job-outputs"})
    backend.close()


def test_concurrent_cache_creation_is_not_an_error(backend, engine):
    labels = {"trainer.kubeflow.org/cache": "race", "trainer.kubeflow.org/backend": "fake"}
    real_list = engine.list_volumes
    seen = []

    def racing_list(wanted: dict[str, str]) -> list[str]:
        if not seen and wanted == labels:  # another job creates the cache between our look and our create
            seen.append(True)
            found = real_list(wanted)
            engine.volumes["kft-cache-race"] = dict(labels)
            return found
        return real_list(wanted)

    engine.list_volumes = racing_list  # type: ignore[method-assign]
    submit(backend, with_initializer(cache="race"))
    backend.delete_job("ini")
    assert "kft-cache-race" in engine.volumes


def test_preparation_counts_started_nodes_then_the_launchers_packages(backend, engine):
    backend.submit(backend.render(two_nodes()))
    for c in engine.containers.values():
        c.state, c.started_at = "created", None
    prep = backend.get_job("job").preparation
    assert prep is not None and prep.describe() == "starting nodes: 0/2 nodes"
    for c in engine.containers.values():
        c.state, c.started_at = "running", engine.now()
    node0 = engine.container("job-node-0")
    node0.logs = b"[kubeflow-trainer] installing six\nCollecting six\nInstalling collected packages: six\n"
    assert backend.get_job("job").preparation.describe() == "installing packages: 0/1 packages"  # type: ignore[union-attr]
    node0.logs += b"Successfully installed six-1.17.0\n[kubeflow-trainer] packages installed\nhello\n"
    assert backend.get_job("job").preparation is None
    node0.logs = b"hello\n"  # once installed, the log is not read again
    assert backend.get_job("job").preparation is None


def test_preparation_names_the_running_initializers(backend, engine):
    submit(backend, with_initializer())
    prep = backend.get_job("ini").preparation
    assert prep is not None and prep.describe() == "initializing: 0/1 steps (dataset-initializer)"
    engine.finish("ini-dataset-initializer", 0)
    prep = backend.get_job("ini").preparation
    assert prep is None or prep.phase != "initializing"


def test_a_finished_jobs_network_is_released_and_the_job_still_reads(backend, engine):
    """A finished multi-node job's network is removed by whoever next counts the engine's jobs (a submission, a
    queue runner) or reads the job, with no delete_job: containers and volumes stay, so get_job and logs work;
    delete_job still removes everything. A running job's network is kept."""
    submit(backend, two_nodes("done"))
    submit(backend, two_nodes("busy"))
    engine.finish("done-node-0", 0, "trained\n")
    assert backend._running_jobs() == 2 and engine.objects()[1] == {"kft-done", "kft-busy"}  # one node still runs
    engine.finish("done-node-1", 0)
    assert backend._running_jobs() == 1
    assert engine.objects()[1] == {"kft-busy"}
    assert backend.get_job("done").status == JobStatus.COMPLETE and list(backend.get_job_logs("done")) == ["trained"]
    calls = len(engine.calls)
    backend.get_job("done")
    assert "list_networks" not in engine.calls[calls:]  # released once, not looked for at every read
    engine.finish("busy-node-0", 1)
    engine.finish("busy-node-1", 0)
    assert backend.get_job("busy").status == JobStatus.FAILED and engine.objects()[1] == set()  # get_job too
    backend.delete_job("done")
    backend.delete_job("busy")
    assert engine.objects() == (set(), set(), set())
