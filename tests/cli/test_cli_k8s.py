"""``kubeflow-trainer`` against the real test control plane (scripts/k8s/: kube-apiserver with the Trainer and
JobSet controllers, KWOK pods that run through their phases without running code)."""

from __future__ import annotations

import fcntl
import json
import uuid
from collections.abc import Iterator

import pytest
from conftest import run_cli, unique
from support.plane import K8S_LOCK, started_plane


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    run_dir = tmp_path_factory.mktemp("k8s") / "run"
    with open(K8S_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with started_plane(run_dir) as status:
            yield status


@pytest.fixture
def k8s_args(plane: dict[str, object]) -> Iterator[list[str]]:
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(str(plane["kubeconfig"])))
    namespace = f"kft-cli-{uuid.uuid4().hex[:6]}"
    api.create_namespace({"metadata": {"name": namespace}})
    try:
        yield ["--backend", "kubernetes", "-c", f"config_file={plane['kubeconfig']}", "-c", f"namespace={namespace}"]
    finally:
        api.delete_namespace(namespace)


def test_every_command_on_the_control_plane(k8s_args: list[str]) -> None:
    doctor = run_cli("doctor", *k8s_args, "-o", "json")
    assert doctor.code == 0, doctor
    checks = {c["name"]: c for c in doctor.json()["checks"]}
    assert checks["CRD trainjobs.trainer.kubeflow.org"]["detail"] == "served versions: v1alpha1"
    assert any(n.startswith("API server") and c["detail"].startswith("Kubernetes v1.") for n, c in checks.items())
    assert "torch-distributed" in run_cli("runtimes", *k8s_args).out

    name = unique("cli-k8s")
    job = ["tests/cli/jobs.py:hello", *k8s_args, "--name", name, "--nodes", "2"]
    dry = run_cli("run", *job, "--dry-run", "-o", "json")
    assert dry.code == 0, dry
    assert "TrainJob" in json.dumps(dry.json()["request"]) and run_cli("get", name, *k8s_args).code == 3

    followed = run_cli("run", *job, "--follow")
    assert followed.code == 0, followed
    assert "[node-0]" in followed.out and "[node-1]" in followed.out, followed.out  # KWOK's pod log lines
    try:
        listed = run_cli("list", *k8s_args, "-o", "json").json()
        assert [(j["name"], j["status"]) for j in listed] == [(name, "Complete")]
        got = run_cli("get", name, *k8s_args)
        assert got.code == 0 and "status:  Complete" in got.out and "node-1" in got.out, got
        assert run_cli("logs", name, *k8s_args, "--step", "node-1").code == 0
        assert run_cli("wait", name, *k8s_args).code == 0
        events = run_cli("events", name, *k8s_args)
        assert events.code == 0 and "Scheduled" in events.out, events
    finally:
        assert run_cli("delete", name, *k8s_args).code == 0
    assert run_cli("logs", name, *k8s_args).code == 3
