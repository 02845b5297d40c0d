"""Outputs and data directories on Kubernetes, where pods leave nothing behind.

Against the real kube-apiserver with the Trainer webhook and controllers: a TrainJob with ``OutputStorage`` is
accepted and the controller's JobSet carries the upload destination and the credentials' Secret references to
the nodes; ``get_job_outputs`` reads the storage recorded on the TrainJob, from a new client, against a real
S3 protocol server (moto); the pods' side (``run_train.py``'s upload, completed and failed) runs here against
the same server. Requests that cannot work are refused before anything is created, saying what is needed.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require

from kubeflow_trainer import (
    CustomTrainer,
    CustomTrainerContainer,
    DataDirs,
    InvalidRequestError,
    Name,
    OutputStorage,
    TrainerClient,
    UnsupportedFeatureError,
)
from kubeflow_trainer_k8s.render import FILES_ENV, OUTPUTS_ANNOTATION, POD_OUTPUT_DIR, RUN_TRAIN

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from support.servers import S3Server

BUCKET = "outputs"


def train_fn() -> None:
    print("train")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture
def client(k8s_config):
    with TrainerClient(k8s_config) as c:
        yield c


def s3_env(s3: S3Server) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def test_output_storage_is_accepted_and_wired_into_the_nodes(client, plane):
    require(plane, "trainer", "webhooks", "runtimes", "jobset")
    storage = OutputStorage("s3://outputs/runs", endpoint_url="http://minio.data:9000", secret="s3-creds")
    name = client.train(trainer=CustomTrainer(func=train_fn, num_nodes=2), options=[Name("out-k8s"), storage])
    ns = client.backend.namespace
    obj = client.backend.custom.get_namespaced_custom_object("trainer.kubeflow.org", "v1alpha1", ns, "trainjobs", name)
    record = json.loads(obj["metadata"]["annotations"][OUTPUTS_ANNOTATION])
    assert record == {"uri": "s3://outputs/runs/out-k8s", "endpoint_url": "http://minio.data:9000"}
    env = {e["name"]: e for e in obj["spec"]["trainer"]["env"]}
    assert env["KUBEFLOW_TRAINER_OUTPUT_DIR"]["value"] == POD_OUTPUT_DIR
    assert env["KFT_OUTPUT_URI"]["value"] == "s3://outputs/runs/out-k8s"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {"secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}}
    deadline = time.monotonic() + 60
    jobset = None
    while jobset is None and time.monotonic() < deadline:
        try:
            jobset = client.backend.custom.get_namespaced_custom_object(
                "jobset.x-k8s.io", "v1alpha2", ns, "jobsets", name
            )
        except Exception:
            time.sleep(0.5)
    assert jobset is not None, "the Trainer controller created no JobSet"
    text = json.dumps(jobset["spec"])
    assert "s3://outputs/runs/out-k8s" in text and "s3-creds" in text, "the JobSet lacks the upload settings"
    client.delete_job(name)


def test_outputs_are_read_from_the_storage_by_a_new_client(client, plane, k8s_config, s3, tmp_path, monkeypatch):
    require(plane, "trainer", "webhooks")
    storage = OutputStorage("s3://outputs/runs", endpoint_url=s3.endpoint())
    name = client.train(trainer=CustomTrainer(func=train_fn), options=[Name("out-read"), storage])
    ckpt = os.urandom(3 * 1024 * 1024 + 5)
    s3.put_tree(BUCKET, f"runs/{name}", {"ckpt/model.bin": ckpt, "metrics.json": b"{}", "ckpt-old/x": b"old"})
    for key, value in s3_env(s3).items():
        monkeypatch.setenv(key, value)
    with TrainerClient(k8s_config) as other:
        paths = other.get_job_outputs(name, tmp_path / "all")
        assert sorted(p.relative_to(tmp_path / "all").as_posix() for p in paths) == [
            "ckpt-old/x",
            "ckpt/model.bin",
            "metrics.json",
        ]
        assert (tmp_path / "all" / "ckpt" / "model.bin").read_bytes() == ckpt
        assert other.get_job_outputs(name, tmp_path / "part", path="ckpt") == [tmp_path / "part" / "ckpt" / "model.bin"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY0000000")  # an unknown key: refused by the server
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        with pytest.raises(Exception, match=r"credentials|SignatureDoesNotMatch|InvalidAccessKeyId|could not read"):
            other.get_job_outputs(name, tmp_path / "denied")
        assert not (tmp_path / "denied").exists()
    client.delete_job(name)


def test_a_job_without_output_storage_says_what_is_needed(client, plane, tmp_path):
    require(plane, "trainer", "webhooks")
    name = client.train(trainer=CustomTrainer(func=train_fn), options=[Name("out-none")])
    with pytest.raises(UnsupportedFeatureError, match=r"without OutputStorage.*OutputStorage\('s3://"):
        client.get_job_outputs(name, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    client.delete_job(name)


def test_requests_that_cannot_work_are_refused_before_anything_is_created(client, plane, tmp_path):
    require(plane, "trainer")
    before = client.list_jobs()
    with pytest.raises(UnsupportedFeatureError, match="data-dirs") as info:
        client.train(trainer=CustomTrainer(func=train_fn), options=[DataDirs({"ds": tmp_path})])
    assert info.value.missing == ("data-dirs",)
    with pytest.raises(InvalidRequestError, match=r"OutputStorage uploads .* only CustomTrainer"):
        client.train(trainer=CustomTrainerContainer(image="busybox"), options=[OutputStorage("s3://outputs/x")])
    assert client.list_jobs() == before


def _run_train(tmp_path: Path, body: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the pods' entry (run_train.py) here, with the script the TrainJob ships, as a node would."""
    from importlib import resources

    (tmp_path / RUN_TRAIN).write_text(resources.files("kubeflow_trainer_k8s").joinpath(RUN_TRAIN).read_text())
    (tmp_path / "train.py").write_text(body)
    return subprocess.run(
        [sys.executable, str(tmp_path / RUN_TRAIN), str(tmp_path / "train.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


WRITE = """
import os
out = os.environ["KUBEFLOW_TRAINER_OUTPUT_DIR"]
os.makedirs(os.path.join(out, "ckpt"), exist_ok=True)
open(os.path.join(out, "ckpt", "model.bin"), "wb").write(bytes(range(256)) * 4096)
os.symlink("/etc/passwd", os.path.join(out, "leak"))
if os.environ.get("FAIL"):
    raise RuntimeError("boom after writing")
"""


@pytest.mark.parametrize("fail", [False, True])
def test_the_pods_upload_their_outputs_when_the_function_ends(s3, tmp_path, fail):
    """run_train.py (what every node runs) uploads the output directory, completed or failed, without
    following symbolic links; the upload is what get_job_outputs then reads."""
    prefix = f"runs/upload-{int(fail)}"
    env = {
        **s3_env(s3),
        "AWS_ENDPOINT_URL": s3.endpoint(),
        "KFT_OUTPUT_URI": f"s3://{BUCKET}/{prefix}",
        "KUBEFLOW_TRAINER_OUTPUT_DIR": str(tmp_path / "out"),
        "KFT_TERMINATION_LOG": str(tmp_path / "termination-log"),
    }
    (tmp_path / "termination-log").write_text("")
    if fail:
        env["FAIL"] = "1"
    done = _run_train(tmp_path, WRITE, env)
    assert (done.returncode != 0) == fail, done.stderr[-2000:]
    assert "uploaded 1 output file(s)" in done.stdout, done.stdout + done.stderr[-2000:]
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    assert keys == [f"{prefix}/ckpt/model.bin"]
    body = s3.client().get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
    assert body == bytes(range(256)) * 4096
    if fail:
        assert "boom after writing" in (tmp_path / "termination-log").read_text()


def test_a_failed_upload_is_reported_and_keeps_the_job_result(s3, tmp_path):
    env = {
        **s3_env(s3),
        "AWS_SECRET_ACCESS_KEY": "wrong",
        "AWS_ENDPOINT_URL": s3.endpoint(),
        "KFT_OUTPUT_URI": f"s3://{BUCKET}/runs/denied",
        "KUBEFLOW_TRAINER_OUTPUT_DIR": str(tmp_path / "out"),
        "KFT_TERMINATION_LOG": str(tmp_path / "termination-log"),
    }
    (tmp_path / "termination-log").write_text("")
    done = _run_train(tmp_path, WRITE, env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "could not upload" in done.stdout
    assert "outputs not uploaded to s3://outputs/runs/denied" in (tmp_path / "termination-log").read_text()


def test_shipped_files_include_the_uploader(client, plane):
    """The node command runs run_train.py, which the TrainJob ships (so the upload runs in every pod)."""
    require(plane, "trainer")
    dry = client.dry_run(trainer=CustomTrainer(func=train_fn), options=[OutputStorage("s3://outputs/x")])
    env = {e["name"]: e.get("value") for e in dry.request.trainjob["spec"]["trainer"]["env"]}
    files = json.loads(base64.b64decode(env[FILES_ENV]))
    assert "finish_outputs()" in files[RUN_TRAIN]
