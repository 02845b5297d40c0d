"""TrainJob rendering, without a cluster: shipped code survives shell and $(VAR) expansion and really runs."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

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
    run = [sys.executable, "-c", BOOTSTRAP, sys.executable, "{dir}/run_train.py", "{dir}/train.py"]
    out = subprocess.run(
        run,
        env={**os.environ, **env, "KFT_TERMINATION_LOG": str(termination), "WORLD_SIZE": "2", "RANK": "1"},
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert out.returncode == 1
    assert "ValueError: user error t0k" in out.stderr
    assert termination.read_text() == "rank 1: ValueError: user error t0k\n"
    missing = tmp_path / "absent"
    out = subprocess.run(
        run,
        env={**os.environ, **env, "KFT_TERMINATION_LOG": str(missing)},
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert out.returncode == 1 and not missing.exists()
