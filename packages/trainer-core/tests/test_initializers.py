"""Initializer types and their backend-neutral planning (no backend, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubeflow_trainer import (
    DataCacheInitializer,
    HuggingFaceDatasetInitializer,
    HuggingFaceModelInitializer,
    Initializer,
    InvalidRequestError,
    S3DatasetInitializer,
    S3ModelInitializer,
    UrlDatasetInitializer,
    UrlModelInitializer,
)
from kubeflow_trainer.initializers import (
    HF_TOKEN_ENV,
    S3_KEY_ENV,
    S3_SECRET_ENV,
    node_env,
    plan_initializers,
    runner_source,
)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: HuggingFaceDatasetInitializer(storage_uri="s3://x"), "hf://"),
        (lambda: HuggingFaceModelInitializer(storage_uri="hf://"), "hf://<org>/<repo>"),
        (lambda: S3DatasetInitializer(storage_uri="s3:///prefix"), "s3://<bucket>"),
        (lambda: S3ModelInitializer(storage_uri="hf://x/y"), "s3://"),
        (lambda: UrlDatasetInitializer(storage_uri="relative/path"), "absolute local path"),
        (lambda: UrlModelInitializer(storage_uri="https:///nohost"), "no host"),
        (lambda: UrlModelInitializer(storage_uri="https://h/x", sha256="abc"), "64 hex"),
        (lambda: S3DatasetInitializer(storage_uri="s3://b/p", cache="Bad Name"), "cache must be"),
        (lambda: DataCacheInitializer(storage_uri="cache://s/t", metadata_loc="x", num_data_nodes=1), "greater"),
    ],
)
def test_bad_initializers_fail_at_construction_naming_the_field(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_secrets_stay_out_of_the_source_and_the_cache_key():
    a = plan_initializers(
        Initializer(
            dataset=S3DatasetInitializer(
                storage_uri="s3://bkt/data/v1", endpoint="http://s3", access_key_id="AK", secret_access_key="SK"
            ),
            model=HuggingFaceModelInitializer(storage_uri="hf://org/m", access_token="tok", revision="r1"),
        ),
        environ={},
    )
    dataset, model = a
    assert dataset.step == "dataset-initializer" and model.step == "model-initializer"
    assert dataset.source["bucket"] == "bkt" and dataset.source["prefix"] == "data/v1"
    assert dataset.secrets == {S3_KEY_ENV: "AK", S3_SECRET_ENV: "SK"} and model.secrets == {HF_TOKEN_ENV: "tok"}
    spec = json.dumps([dataset.spec(output="/o", status_dir="/s"), model.spec(output="/o", status_dir="/s")])
    assert "SK" not in spec and "tok" not in spec and "AK" not in spec
    other_creds = plan_initializers(
        Initializer(dataset=S3DatasetInitializer(storage_uri="s3://bkt/data/v1", endpoint="http://s3")), environ={}
    )[0]
    assert other_creds.cache_key == dataset.cache_key  # same source, other credentials: same cache entry
    moved = plan_initializers(
        Initializer(dataset=S3DatasetInitializer(storage_uri="s3://bkt/data/v2", endpoint="http://s3")), environ={}
    )[0]
    assert moved.cache_key != dataset.cache_key
    assert dataset.requirements == ("boto3",) and model.requirements == ("huggingface_hub",)


def test_hf_endpoint_comes_from_the_submitting_environment_and_paths_become_patterns():
    (step,) = plan_initializers(
        Initializer(dataset=HuggingFaceDatasetInitializer(storage_uri="hf://org/ds/data/train")),
        environ={"HF_ENDPOINT": "http://hub.local/"},
    )
    assert step.source["endpoint"] == "http://hub.local"
    assert step.source["repo_id"] == "org/ds" and step.source["repo_type"] == "dataset"
    assert step.source["allow_patterns"] == ["data/train", "data/train/*"]
    explicit = HuggingFaceModelInitializer(storage_uri="hf://gpt2", endpoint="http://mine")
    (step,) = plan_initializers(Initializer(model=explicit), environ={"HF_ENDPOINT": "http://other"})
    assert step.source["endpoint"] == "http://mine" and step.source["repo_id"] == "gpt2"
    assert step.source["ignore_patterns"] == ["*.msgpack", "*.h5", "*.bin", "*.pt", "*.pth"]


def test_local_paths_must_exist_and_are_exposed_separately(tmp_path: Path):
    with pytest.raises(InvalidRequestError, match="does not exist"):
        plan_initializers(Initializer(dataset=UrlDatasetInitializer(storage_uri=str(tmp_path / "nope"))))
    (tmp_path / "d").mkdir()
    (step,) = plan_initializers(Initializer(dataset=UrlDatasetInitializer(storage_uri=f"file://{tmp_path / 'd'}")))
    assert step.local_path == str(tmp_path / "d") and step.requirements == ()
    assert step.spec(output="/o", status_dir="/s", source_path="/kft-source/d")["source"]["path"] == "/kft-source/d"


def test_data_cache_is_kubernetes_only():
    init = Initializer(dataset=DataCacheInitializer(storage_uri="cache://s/t", metadata_loc="m", num_data_nodes=2))
    with pytest.raises(InvalidRequestError, match="kubernetes"):
        plan_initializers(init)


def test_node_env_and_runner_ship_with_core():
    steps = plan_initializers(
        Initializer(
            dataset=S3DatasetInitializer(storage_uri="s3://b/p"), model=UrlModelInitializer(storage_uri="https://h/m")
        )
    )
    assert node_env(steps, "/workspace/") == {
        "KUBEFLOW_TRAINER_DATASET_DIR": "/workspace/dataset",
        "KUBEFLOW_TRAINER_MODEL_DIR": "/workspace/model",
    }
    source = runner_source()
    assert "def main(" in source and "import kubeflow_trainer" not in source  # standalone in the job


def test_the_runner_prints_progress_that_the_backends_read(tmp_path: Path):
    """The runner, run as jobs run it (``python initializer.py spec.json``), on a local directory source: its
    progress lines parse into the Preparation backends report, ending with every file and byte."""
    import subprocess
    import sys

    from kubeflow_trainer.preparation import initializer_progress

    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "a.bin").write_bytes(b"x" * 3000)
    (source / "sub" / "b.bin").write_bytes(b"y" * 1000)
    runner = tmp_path / "initializer.py"
    runner.write_text(runner_source())
    spec = {"step": "dataset-initializer", "source": {"type": "path", "path": str(source)}}
    spec["output"] = str(tmp_path / "out")
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = subprocess.run(
        [sys.executable, str(runner), str(tmp_path / "spec.json")], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    progress = [line for line in out if " progress: " in line]
    assert progress[0] == "[dataset-initializer] progress: 0/2 files, 0/4000 bytes", out
    assert progress[-1] == "[dataset-initializer] progress: 2/2 files, 4000/4000 bytes", out
    prep = initializer_progress(out)
    assert prep is not None and (prep.done, prep.total, prep.unit) == (4000, 4000, "bytes")
    assert prep.describe() == "initializing: 4.0/4.0 kB (dataset-initializer: 2/2 files)"
    first = initializer_progress(progress[:1])
    assert first is not None and first.describe() == "initializing: 0.0/4.0 kB (dataset-initializer: 0/2 files)"
    assert initializer_progress(["[x] downloading http://h/m", "some progress: text"]) is None
