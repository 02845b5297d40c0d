"""TrainJob rendering, without a cluster: shipped code survives shell and $(VAR) expansion and really runs."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from kubeflow_trainer import (
    ActiveDeadlineSeconds,
    CustomTrainer,
    HuggingFaceDatasetInitializer,
    HuggingFaceModelInitializer,
    Initializer,
    InvalidRequestError,
    Labels,
    Name,
    RuntimePatch,
    S3DatasetInitializer,
    UrlDatasetInitializer,
)
from kubeflow_trainer.plan import build_plan
from kubeflow_trainer.runtimes import builtin_runtimes
from kubeflow_trainer_k8s.backend import termination_cause
from kubeflow_trainer_k8s.render import BOOTSTRAP, FILES_ENV, initializer_secrets, render_trainjob

WEIRD = "$HOME `id` $(PATH) \"dq\" 'sq' \\"


def show(text: str) -> None:
    print("ARG", text)


def plan(**kw):
    (runtime,) = builtin_runtimes()
    return build_plan(
        backend="kubernetes",
        runtime=runtime,
        trainer=kw.pop("trainer"),
        initializer=kw.pop("initializer", None),
        options=kw.pop("options", None),
    )


def test_trainjob_fields():
    p = plan(
        trainer=CustomTrainer(
            func=show,
            func_args={"text": "x"},
            num_nodes=2,
            resources_per_node={"gpu": 2, "cpu": 8, "memory": "16Gi"},
            env={"A": "$(NOT_EXPANDED)"},
            packages_to_install=["six"],
            pip_index_urls=["https://i.invalid/simple"],
        ),
        initializer=Initializer(dataset=S3DatasetInitializer(storage_uri="s3://b/d", endpoint="http://s3")),
        options=[
            Name("tj"),
            Labels(labels={"team": "a"}),
            ActiveDeadlineSeconds(seconds=60),
            RuntimePatch(patch={"template": {"metadata": {"labels": {"x": "y"}}}}, manager="example.com/t"),
        ],
    )
    tj = render_trainjob(p, "ns")
    assert tj["metadata"]["name"] == "tj" and tj["metadata"]["namespace"] == "ns"
    assert tj["metadata"]["labels"]["team"] == "a"
    spec = tj["spec"]
    assert spec["runtimeRef"] == {
        "name": "torch-distributed",
        "kind": "ClusterTrainingRuntime",
        "apiGroup": "trainer.kubeflow.org",
    }
    trainer = spec["trainer"]
    assert trainer["numNodes"] == 2 and trainer["numProcPerNode"] == 2
    assert trainer["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": "2", "cpu": "8", "memory": "16Gi"}
    env = {e["name"]: e["value"] for e in trainer["env"]}
    assert env["A"] == "$$(NOT_EXPANDED)"  # Kubernetes' escape: the container sees $(NOT_EXPANDED)
    assert json.loads(env["KFT_PACKAGES"]) == ["six"]
    assert trainer["command"][:2] == ["python3", "-c"] and "$" not in trainer["command"][2]
    assert spec["initializer"]["dataset"]["storageUri"] == "s3://b/d"
    assert {"name": "ENDPOINT", "value": "http://s3"} in spec["initializer"]["dataset"]["env"]
    assert spec["activeDeadlineSeconds"] == 60
    assert spec["runtimePatches"][0]["manager"] == "example.com/t"


def test_bootstrap_runs_the_function_without_any_expansion(tmp_path):
    """Run the pod's command for real (python instead of torchrun): the argument arrives byte for byte."""
    p = plan(trainer=CustomTrainer(func=show, func_args={"text": WEIRD}))
    trainer = render_trainjob(p, "ns")["spec"]["trainer"]
    env = {e["name"]: e["value"].replace("$$", "$") for e in trainer["env"]}  # what Kubernetes hands the pod
    files = json.loads(base64.b64decode(env[FILES_ENV]))
    assert set(files) == {"train.py", "launch.py", "run_train.py"}
    out = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, sys.executable, "{dir}/train.py"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert out.stdout.strip() == f"ARG {WEIRD}"


def test_initializer_credentials_go_to_a_secret_not_the_trainjob(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.internal")
    p = plan(
        trainer=CustomTrainer(func=show, func_args={"text": "x"}),
        initializer=Initializer(
            dataset=S3DatasetInitializer(
                storage_uri="s3://b/d", endpoint="http://s3", access_key_id="AKIA1", secret_access_key="s3cr3t"
            ),
            model=HuggingFaceModelInitializer(storage_uri="hf://org/m", access_token="hf_tok"),
        ),
        options=[Name("tj")],
    )
    tj = render_trainjob(p, "ns")
    assert "s3cr3t" not in json.dumps(tj) and "hf_tok" not in json.dumps(tj) and "AKIA1" not in json.dumps(tj)
    init = tj["spec"]["initializer"]
    assert init["dataset"]["secretRef"] == {"name": "tj-dataset-initializer"}
    assert init["model"]["secretRef"] == {"name": "tj-model-initializer"}
    assert {"name": "HF_ENDPOINT", "value": "http://hub.internal"} in init["model"]["env"]
    assert initializer_secrets(p) == {
        "dataset": {"ACCESS_KEY_ID": "AKIA1", "SECRET_ACCESS_KEY": "s3cr3t"},
        "model": {"ACCESS_TOKEN": "hf_tok"},
    }


@pytest.mark.parametrize(
    ("initializer", "match"),
    [
        (Initializer(dataset=UrlDatasetInitializer(storage_uri="https://x.invalid/d.tar")), "UrlDatasetInitializer"),
        (Initializer(model=HuggingFaceModelInitializer(storage_uri="hf://o/m", revision="v1")), "revision"),
        (Initializer(dataset=S3DatasetInitializer(storage_uri="s3://b/d", cache="c")), "cache"),
        (Initializer(dataset=HuggingFaceDatasetInitializer(storage_uri="hf://o/d", allow_patterns=["*"])), "allow"),
    ],
)
def test_initializer_features_the_trainer_images_lack_are_refused(initializer, match):
    p = plan(trainer=CustomTrainer(func=show, func_args={"text": "x"}), initializer=initializer)
    with pytest.raises(InvalidRequestError, match=match):
        render_trainjob(p, "ns")


def test_callable_options_edit_the_body_and_bad_ones_are_refused():
    from kubeflow_trainer_k8s.render import apply_callable_options

    def suspend(job_spec, trainer, backend):
        job_spec["spec"]["suspend"] = True  # a TrainJob field upstream's option protocol would drop

    p = plan(trainer=CustomTrainer(func=show, func_args={"text": "x"}), options=[Name("c"), suspend])
    assert apply_callable_options(render_trainjob(p, "ns"), p, None)["spec"]["suspend"] is True

    def typo(job_spec, trainer, backend):
        job_spec["spec"]["trainer"]["numnodes"] = 2

    def wrong_type(job_spec, trainer, backend):
        job_spec["spec"]["activeDeadlineSeconds"] = "soon"

    for option, match in [(typo, r"spec\.trainer\.numnodes"), (wrong_type, "invalid TrainJob")]:
        p = plan(trainer=CustomTrainer(func=show, func_args={"text": "x"}), options=[option])
        with pytest.raises(InvalidRequestError, match=match):
            apply_callable_options(render_trainjob(p, "ns"), p, None)


def test_raw_runtime_patch_fields_the_api_lacks_are_refused():
    p = plan(
        trainer=CustomTrainer(func=show, func_args={"text": "x"}),
        options=[RuntimePatch(patch={"template": {"spec": {"replicatedJobs": [{"name": "node", "replicas": 2}]}}})],
    )
    with pytest.raises(
        InvalidRequestError, match=r"no field trainingRuntimeSpec\.template\.spec\.replicatedJobs\[0\]\.replicas"
    ):
        render_trainjob(p, "ns")


def run_shipped(tmp_path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The pod's command (BOOTSTRAP, then run_train.py with train.py) run here with ``env`` on top of this
    process's; it is expected to fail (the functions these tests ship raise)."""
    run = [sys.executable, "-c", BOOTSTRAP, sys.executable, "{dir}/run_train.py", "{dir}/train.py"]
    return subprocess.run(run, env={**os.environ, **env}, capture_output=True, text=True, check=False, cwd=tmp_path)


def fails(token: str) -> None:
    raise ValueError(f"user error {token}")


def test_an_uncaught_exception_becomes_the_pods_termination_message(tmp_path):
    """run_train.py (what torchrun starts in the pod) appends the user's exception to the termination message
    file the kubelet mounts, and still fails with the traceback on stderr; no file is created where none is."""
    p = plan(trainer=CustomTrainer(func=fails, func_args={"token": "t0k"}))
    trainer = render_trainjob(p, "ns")["spec"]["trainer"]
    assert trainer["command"][3:] == ["torchrun", "{dir}/run_train.py", "{dir}/train.py"]
    env = {e["name"]: e["value"].replace("$$", "$") for e in trainer["env"]}
    termination = tmp_path / "termination-log"
    termination.write_text("")
    out = run_shipped(tmp_path, {**env, "KFT_TERMINATION_LOG": str(termination), "WORLD_SIZE": "2", "RANK": "1"})
    assert out.returncode == 1
    assert "ValueError: user error t0k" in out.stderr
    lines = termination.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("{")  # one JSON line (torchrun's error-file format)
    terminated = SimpleNamespace(message=termination.read_text(), reason="Error", exit_code=1)
    line = fails.__code__.co_firstlineno + 1
    assert termination_cause(terminated) == (
        f'rank 1: ValueError: user error t0k (File "{__file__}", line {line}, in fails: '
        'raise ValueError(f"user error {token}"))'
    )
    missing = tmp_path / "absent"
    out = run_shipped(tmp_path, {**env, "KFT_TERMINATION_LOG": str(missing)})
    assert out.returncode == 1 and not missing.exists()


def test_termination_causes_name_out_of_memory_and_unresolvable_packages():
    oom = termination_cause(SimpleNamespace(message="", reason="OOMKilled", exit_code=137))
    assert "ran out of memory (OOMKilled, exit code 137)" in oom
    pip = "ERROR: No matching distribution found for nopkg==9"
    cause = termination_cause(SimpleNamespace(message=pip, reason="Error", exit_code=97))
    assert cause.startswith("installing packages_to_install failed: the requirement 'nopkg==9' could not be resolved")
    assert termination_cause(SimpleNamespace(message="", reason="Error", exit_code=3)) == "Error"


def test_max_restarts_reaches_the_pods_torchrun_as_pet_max_restarts():
    from kubeflow_trainer import MaxRestarts

    body = render_trainjob(
        plan(trainer=CustomTrainer(func=show, func_args={"text": "x"}), options=[MaxRestarts(restarts=3)]), "ns"
    )
    env = {e["name"]: e["value"] for e in body["spec"]["trainer"]["env"]}
    assert env["PET_MAX_RESTARTS"] == "3"
    files = json.loads(base64.b64decode(env[FILES_ENV]))
    assert "_kft_restart" in files["train.py"]  # the script records torchrun's restarts (where it can)
    plain = render_trainjob(plan(trainer=CustomTrainer(func=show, func_args={"text": "x"})), "ns")
    assert "PET_MAX_RESTARTS" not in {e["name"] for e in plain["spec"]["trainer"]["env"]}


@pytest.mark.parametrize(
    ("spec", "conditions", "pods_running", "expected"),
    [
        ({"suspend": True}, [], False, "Suspended"),
        ({"suspend": True}, [{"type": "Suspended", "status": "True", "reason": "Suspended"}], False, "Suspended"),
        # kubeflow/sdk#803: after the resume a Suspended=False (Resumed) condition stays behind
        ({"suspend": False}, [{"type": "Suspended", "status": "False", "reason": "Resumed"}], True, "Running"),
        ({}, [], False, "Created"),
    ],
)
def test_suspended_trainjobs_read_suspended_and_resumed_ones_run(spec, conditions, pods_running, expected):
    from types import SimpleNamespace

    from kubeflow_trainer_k8s.backend import KubernetesBackend

    backend = object.__new__(KubernetesBackend)
    obj = {
        "metadata": {"name": "j", "creationTimestamp": "2026-12-07T00:00:00Z"},
        "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": {"numNodes": 1}, **spec},
        "status": {"conditions": conditions},
    }
    pods = []
    if pods_running:
        labels = {"jobset.sigs.k8s.io/replicatedjob-name": "node", "batch.kubernetes.io/job-completion-index": "0"}
        pods = [
            SimpleNamespace(
                metadata=SimpleNamespace(name="j-node-0-0", labels=labels, creation_timestamp=None),
                status=SimpleNamespace(phase="Running", container_statuses=[]),
                spec=SimpleNamespace(containers=[]),
            )
        ]
    (runtime,) = builtin_runtimes()
    job = backend._job(obj, pods, {("ClusterTrainingRuntime", "torch-distributed"): runtime})
    assert job.status == expected, (job.status, job.message)


def test_a_restart_is_recorded_in_the_termination_message_and_read_back(tmp_path):
    """With MaxRestarts, a restarted node's workers append ``kft-restart <count> <time>`` to the container's
    termination message (the rendered env names it); the backend reads it back as the step's restart count and a
    Restarted event, and the failure's message ignores the record line. (The pod status is built here from the
    file the job wrote; the kubelet tier runs the same through a real kubelet: the kit's restart check.)"""
    from kubeflow_trainer import MaxRestarts
    from kubeflow_trainer import restarts as restart_records_module
    from kubeflow_trainer_k8s.backend import restart_records

    p = plan(trainer=CustomTrainer(func=fails, func_args={"token": "again"}), options=[MaxRestarts(restarts=1)])
    trainer = render_trainjob(p, "ns")["spec"]["trainer"]
    env = {e["name"]: e["value"].replace("$$", "$") for e in trainer["env"]}
    assert env[restart_records_module.RECORDS_FILE_ENV] == "/dev/termination-log"
    termination = tmp_path / "termination-log"
    termination.write_text("")
    job_env = {
        **env,
        "KFT_TERMINATION_LOG": str(termination),
        restart_records_module.RECORDS_FILE_ENV: str(termination),
        "TORCHELASTIC_RESTART_COUNT": "1",  # as torchrun sets it in a restarted worker group
        "GROUP_RANK": "1",
    }
    out = run_shipped(tmp_path, job_env)
    assert out.returncode == 1
    assert "[kubeflow-trainer] node-1: torchrun restarted the workers after a failure (restart 1)" in out.stdout
    text = termination.read_text()
    assert text.startswith("kft-restart 1 ") and len(text.splitlines()) == 2, text
    terminated = SimpleNamespace(message=text, reason="Error", exit_code=1)
    assert termination_cause(terminated).startswith("ValueError: user error again")
    pod = SimpleNamespace(
        status=SimpleNamespace(container_statuses=[SimpleNamespace(state=SimpleNamespace(terminated=terminated))])
    )
    records = restart_records(pod)
    assert [count for count, _ in records] == [1]
    assert "restart 1" in restart_records_module.events("node-1", records)[0].message
    running = SimpleNamespace(
        status=SimpleNamespace(container_statuses=[SimpleNamespace(state=SimpleNamespace(terminated=None))])
    )
    assert restart_records(running) == []
    # no record file in the container (not on Kubernetes): nothing is created, the job's error stands
    missing = tmp_path / "absent"
    out = run_shipped(tmp_path, {**job_env, restart_records_module.RECORDS_FILE_ENV: str(missing)})
    assert out.returncode == 1 and not missing.exists()


def test_a_failed_job_names_the_step_that_failed_first():
    """The JobSet's message names its failed Job ("<job>-node-0" holds every node's pod); the job's message
    names the node whose container failed first and its cause, as the other backends do, then the condition."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from kubeflow_trainer_k8s.backend import KubernetesBackend

    def pod(rank: int, finished: int, message: str, code: int) -> SimpleNamespace:
        labels = {
            "jobset.sigs.k8s.io/replicatedjob-name": "node",
            "batch.kubernetes.io/job-completion-index": str(rank),
        }
        terminated = SimpleNamespace(
            exit_code=code,
            reason="Error",
            message=message,
            finished_at=datetime(2026, 12, 7, 0, 0, finished, tzinfo=timezone.utc),
        )
        return SimpleNamespace(
            metadata=SimpleNamespace(name=f"j-node-0-{rank}", labels=labels, creation_timestamp=None),
            status=SimpleNamespace(
                phase="Failed", container_statuses=[SimpleNamespace(state=SimpleNamespace(terminated=terminated))]
            ),
            spec=SimpleNamespace(containers=[]),
        )

    condition = "jobset failed due to one or more job failures (first failed job: j-node-0)"
    obj = {
        "metadata": {"name": "j", "creationTimestamp": "2026-12-07T00:00:00Z"},
        "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": {"numNodes": 2}},
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "FailedJobs", "message": condition}]},
    }
    backend = object.__new__(KubernetesBackend)
    (runtime,) = builtin_runtimes()
    runtimes = {("ClusterTrainingRuntime", "torch-distributed"): runtime}
    pods = [pod(0, 9, "", 1), pod(1, 5, "kft-restart 1 1.0\nrank 1: SystemExit: 3", 3)]
    job = backend._job(obj, pods, runtimes)
    assert job.message == f"node-1 failed: rank 1: SystemExit: 3 (the TrainJob's condition: {condition})", job.message
    # no message from the job: what the exit code means
    job = backend._job(obj, [pod(1, 5, "", 137)], runtimes)
    assert (job.message or "").startswith("node-1 failed: killed by SIGKILL (exit code 137)"), job.message
    # node-0's pod deleted by the Job controller when the Job failed: the step still reads Failed, stopped
    steps = {s.name: s for s in job.steps}
    assert [s.name for s in job.steps] == ["node-0", "node-1"]
    assert steps["node-0"].status == "Failed" and steps["node-0"].pod_name == ""
    assert (steps["node-0"].message or "").startswith("stopped because node-1 failed (its pod is gone"), steps
    # node-0's pod still being stopped (Running, deleted): Failed, stopped because node-1 failed
    stopping = pod(0, 9, "", 0)
    stopping.status.phase, stopping.status.container_statuses = "Running", []
    job = backend._job(obj, [stopping, pod(1, 5, "", 1)], runtimes)
    node0 = {s.name: s for s in job.steps}["node-0"]
    assert node0.status == "Failed" and node0.message == "stopped because node-1 failed", node0
    assert node0.pod_name == "j-node-0-0"
