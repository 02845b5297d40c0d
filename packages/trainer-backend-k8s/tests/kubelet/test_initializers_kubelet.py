"""The Trainer's dataset and model initializers, for real on the node: the images node-build.sh built from the
``github.com/kubeflow/trainer/v2`` module's Python initializers (imported by node-up.sh under the names the
runtimes use) download from the tests' S3 server (moto, reached at this machine's primary IPv4 address, as the
container backends' tests do) into the job's volume, and the trainer prints a digest of what it finds.

The runtime is a namespaced copy of upstream's initializer layout (dataset-initializer and model-initializer
jobs, then the node job depending on both) with a hostPath volume for ``/workspace``: the tier has one node and
no storage provisioner for upstream's ``volumeClaimPolicies`` PVC.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeflow_trainer import (
    COMPLETE,
    FAILED,
    CustomTrainer,
    Initializer,
    JobFailedError,
    Name,
    S3DatasetInitializer,
    S3ModelInitializer,
    TrainerClient,
)
from kubeflow_trainer.initializers import DATASET_DIR_ENV, MODEL_DIR_ENV
from kubeflow_trainer.testing.jobs import tree_digest, tree_job

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests"))
from support.servers import S3Server, host_address

DATASET = {"train.jsonl": b'{"x": 1}\n{"x": 2}\n', "val/part-0.jsonl": b'{"x": 3}\n'}
MODEL = {"config.json": b'{"layers": 2}', "weights/model.safetensors": bytes(range(256)) * 64}
RUNTIME = "torch-with-initializers"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        server.put_tree("datasets", "kubelet/v1", DATASET)
        server.put_tree("models", "tiny", MODEL)
        yield server


def replicated_job(name: str, ancestor: str, container: dict[str, Any], volume: dict[str, Any]) -> dict[str, Any]:
    container = {**container, "volumeMounts": [{"name": "initializer", "mountPath": "/workspace"}]}
    return {
        "name": name,
        "template": {
            "metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": ancestor}},
            "spec": {
                "backoffLimit": 0,
                "template": {"spec": {"restartPolicy": "Never", "containers": [container], "volumes": [volume]}},
            },
        },
    }


@pytest.fixture
def runtime(plane: dict[str, Any], namespace: str, tmp_path: Path) -> str:
    from kubernetes import client, config

    custom = client.CustomObjectsApi(config.new_client_from_config(plane["kubeconfig"]))
    upstream = custom.get_cluster_custom_object(
        "trainer.kubeflow.org", "v1alpha1", "clustertrainingruntimes", "torch-distributed"
    )
    node_image = upstream["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"][
        "containers"
    ][0]["image"]
    version = plane["trainer_version"]
    volume = {"name": "initializer", "hostPath": {"path": str(tmp_path / "workspace"), "type": "DirectoryOrCreate"}}
    init = "ghcr.io/kubeflow/trainer/{}-initializer:v" + version
    node = replicated_job("node", "trainer", {"name": "node", "image": node_image}, volume)
    node["dependsOn"] = [
        {"name": "dataset-initializer", "status": "Complete"},
        {"name": "model-initializer", "status": "Complete"},
    ]
    body = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainingRuntime",
        "metadata": {"name": RUNTIME, "labels": {"trainer.kubeflow.org/framework": "torch"}},
        "spec": {
            "mlPolicy": {"numNodes": 1, "torch": {}},
            "template": {
                "spec": {
                    "replicatedJobs": [
                        replicated_job(
                            "dataset-initializer",
                            "dataset-initializer",
                            {"name": "dataset-initializer", "image": init.format("dataset")},
                            volume,
                        ),
                        replicated_job(
                            "model-initializer",
                            "model-initializer",
                            {"name": "model-initializer", "image": init.format("model")},
                            volume,
                        ),
                        node,
                    ]
                }
            },
        },
    }
    custom.create_namespaced_custom_object("trainer.kubeflow.org", "v1alpha1", namespace, "trainingruntimes", body)
    return RUNTIME


@pytest.fixture
def client(k8s_config: Any) -> Iterator[TrainerClient]:
    with TrainerClient(backend_config=k8s_config) as c:
        yield c


def trainer() -> CustomTrainer:
    # The Trainer's initializers write to /workspace/{dataset,model} (its runtimes' convention).
    return CustomTrainer(
        func=tree_job,
        func_args={"variables": [DATASET_DIR_ENV, MODEL_DIR_ENV]},
        env={DATASET_DIR_ENV: "/workspace/dataset", MODEL_DIR_ENV: "/workspace/model"},
    )


def s3_initializer(s3: S3Server, dataset_uri: str) -> Initializer:
    endpoint, region = s3.endpoint(host_address()), "us-east-1"
    keys = {"access_key_id": s3.access_key, "secret_access_key": s3.secret_key}
    return Initializer(
        dataset=S3DatasetInitializer(storage_uri=dataset_uri, endpoint=endpoint, region=region, **keys),
        model=S3ModelInitializer(storage_uri="s3://models/tiny", endpoint=endpoint, region=region, **keys),
    )


def test_s3_initializers_fill_the_volume_the_trainer_reads(client: TrainerClient, runtime: str, s3: S3Server) -> None:
    name = f"kft-init-{uuid.uuid4().hex[:6]}"
    client.train(
        runtime=client.get_runtime(runtime),
        trainer=trainer(),
        initializer=s3_initializer(s3, "s3://datasets/kubelet/v1"),
        options=[Name(name=name)],
    )
    try:
        # while an initializer's pod is pending or running, the job says so (the kit's preparation check)
        preparations = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = client.get_job(name)
            if job.preparation is not None:
                preparations.append(job.preparation)
            if any(s.name == "node-0" for s in job.steps) or job.status in (COMPLETE, FAILED):
                break
            time.sleep(0.2)
        initializing = [p for p in preparations if p.phase == "initializing"]
        assert initializing and "-initializer" in (initializing[0].detail or ""), preparations
        job = client.wait_for_job_status(name, timeout=300, polling_interval=0.5)
        assert job.status == COMPLETE and job.preparation is None
        assert [(s.name, s.status) for s in job.steps] == [
            ("dataset-initializer", COMPLETE),
            ("model-initializer", COMPLETE),
            ("node-0", COMPLETE),
        ]
        lines = [line for line in client.get_job_logs(name, step="node-0") if line.startswith("TREE")]
        assert lines == [
            f"TREE {DATASET_DIR_ENV} {tree_digest(DATASET)}",
            f"TREE {MODEL_DIR_ENV} {tree_digest(MODEL)}",
        ]
        dataset_log = "\n".join(client.get_job_logs(name, step="dataset-initializer"))
        assert "Downloading files from S3 bucket: datasets" in dataset_log, dataset_log
    finally:
        client.delete_job(name)


def test_a_failing_initializer_fails_the_job_with_its_error(client: TrainerClient, runtime: str, s3: S3Server) -> None:
    name = f"kft-init-bad-{uuid.uuid4().hex[:6]}"
    client.train(
        runtime=client.get_runtime(runtime),
        trainer=trainer(),
        initializer=s3_initializer(s3, "s3://no-such-bucket/x"),
        options=[Name(name=name)],
    )
    try:
        with pytest.raises(JobFailedError) as info:
            client.wait_for_job_status(name, timeout=300, polling_interval=0.5)
        steps = {s.name: s for s in client.get_job(name).steps}
        assert steps["dataset-initializer"].status == "Failed", steps
        node = steps["node-0"]  # a step of the job, with no pod: JobSet never created the node's Job
        assert node.status == "Failed" and node.pod_name == "", ("the trainer ran", node)
        assert node.message == "not started because dataset-initializer failed", node
        assert "dataset-initializer failed" in str(info.value), str(info.value)
        assert "no-such-bucket" in "\n".join(client.get_job_logs(name, step="dataset-initializer"))
    finally:
        client.delete_job(name)
