"""The container backend's logic on the FakeEngine: render/submit, statuses and root causes, cleanup, logs,
events, deletion. The same backend runs on the real engines in the Docker and Podman distributions' tests."""

from __future__ import annotations

import json

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
from kubeflow_trainer_containers.fake import KILLED
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
    assert engine.objects() == ({"job-node-0", "job-node-1"}, {"kft-job"}, {"kft-job"})
    assert engine.networks["kft-job"] == dict(request.network.labels)
    for spec in request.containers:
        created = engine.container(spec.name)
        assert created.spec == spec and created.state == "running"
        assert created.env == spec.environment(reveal_secrets=True)
    node0 = engine.container("job-node-0")
    assert set(request.files) <= {p.removeprefix("/workspace/") for p in node0.files}
    assert engine.calls.index("put_files") < engine.calls.index("start_container")  # files before any start


def test_secrets_reach_only_the_engine(backend, engine):
    request = submit(backend, with_initializer())
    step = request.container("ini-dataset-initializer")
    assert "hf_secret" not in request.model_dump_json() and "hf_secret" not in repr(request)
    assert SECRET_PLACEHOLDER in json.dumps(request.engine_requests)
    assert "hf_secret" in engine.container("ini-dataset-initializer").env.values()
    assert not any("hf_secret" in c.env.values() for c in engine.containers.values() if c.name.endswith("node-0"))
    assert step.secret_env and all("hf_secret" not in f for f in request.files.values())


def test_initializer_gate_wraps_the_node_command(backend):
    request = backend.render(with_initializer())
    node = request.container("ini-node-0")
    assert node.command[:2] == ["/bin/sh", "-c"] and node.command[3] == "kft-gate"
    assert node.env["KFT_WAIT_FOR"] == "dataset-initializer"
    assert [c.name for c in request.containers] == ["ini-dataset-initializer", "ini-node-0"]
    assert ".kft/initializer.py" in request.files and ".kft/dataset-initializer.json" in request.files


def test_packages_use_the_launcher(backend):
    plan = make_plan(CustomTrainer(func=hello, packages_to_install=["six"], pip_index_urls=["https://i/simple"]))
    request = backend.render(plan)
    assert request.containers[0].command[:3] == ["python3", "/workspace/.kft/launch.py", "torchrun"]
    assert "PIP_FAILED" in request.files[".kft/launch.py"]


def test_duplicate_name_is_refused_and_changes_nothing(backend, engine):
    submit(backend, two_nodes())
    before = engine.objects()
    with pytest.raises(AlreadyExistsError):
        submit(backend, two_nodes())
    assert engine.objects() == before


@pytest.mark.parametrize("method", ["create_network", "create_container", "put_files", "start_container"])
def test_failed_submit_leaves_nothing(backend, engine, method):
    engine.fail(method, BackendError(f"{method} broke"), after=1 if method == "create_container" else 0)
    with pytest.raises(BackendError, match=f"{method} broke"):
        submit(backend, two_nodes())
    assert engine.objects() == (set(), set(), set())


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
    assert job.message == "node-1 exited with code 3"
    assert engine.container("job-node-0").state == "exited"  # reconciled: the other node was stopped
    assert job.steps[0].message == "stopped because node-1 failed"
    assert job.steps[1].message == "exited with code 3" and job.steps[1].exit_code == 3


def test_killed_node_is_the_root_cause(backend, engine):
    submit(backend, two_nodes())
    engine.kill("job-node-0")
    job = backend.get_job("job")
    assert job.status is JobStatus.FAILED and job.message == f"node-0 exited with code {KILLED}"


def test_removed_node_fails_the_job(backend, engine):
    submit(backend, two_nodes())
    engine.remove_container(engine.container("job-node-1").id)
    job = backend.get_job("job")
    assert job.status is JobStatus.FAILED and job.message == "1 node container(s) of the job were removed"


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


def test_auto_remove_false_keeps_the_workspace(engine):
    backend = ContainerBackend(config(image=IMAGE, auto_remove=False), engine)
    submit(backend, two_nodes())
    backend.delete_job("job")
    assert engine.objects() == (set(), set(), {"kft-job"})
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
