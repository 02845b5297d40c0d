"""A real control plane for the Kubernetes backend tests: etcd, kube-apiserver with the Trainer CRDs,
kube-controller-manager, kube-scheduler, the JobSet and Trainer controllers and KWOK, all on 127.0.0.1,
built from Go modules by scripts/k8s/ (cached outside the clone; a warm start takes seconds).

KWOK runs no containers: pods go Pending -> Running -> Succeeded and serve a log file. Tests that need a
component that could not start fail with the reason up.sh recorded (never a silent pass).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

K8S = Path(__file__).resolve().parents[3] / "scripts" / "k8s"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kubelet-tier",
        action="store_true",
        help="collect tests/kubelet/: the real-kubelet tier (scripts/k8s/node-up.sh; `nox -s k8s_kubelet`)",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/kubelet/ needs the real-kubelet tier (root, images): collected only with --kubelet-tier."""
    if collection_path.name == "kubelet" and collection_path.parent == Path(__file__).parent:
        return not config.getoption("--kubelet-tier")
    return None


@pytest.fixture(scope="session")
def plane(tmp_path_factory: pytest.TempPathFactory):
    run_dir = Path(os.environ.get("KFT_K8S_RUN_DIR") or tmp_path_factory.mktemp("k8s") / "run")
    env = dict(os.environ, KFT_K8S_RUN_DIR=str(run_dir))
    subprocess.run(["bash", str(K8S / "build.sh")], env=env, check=False, capture_output=True)
    up = subprocess.run(["bash", str(K8S / "up.sh")], env=env, check=False, capture_output=True, text=True)
    status_file = run_dir / "components.json"
    if not status_file.exists():
        pytest.fail(f"the test control plane did not start: {up.stdout[-2000:]}{up.stderr[-2000:]}", pytrace=False)
    status = json.loads(status_file.read_text())
    try:
        yield status
    finally:
        if not os.environ.get("KFT_K8S_KEEP"):
            subprocess.run(["bash", str(K8S / "down.sh")], env=env, check=False, capture_output=True)


def require(plane: dict, *components: str) -> None:
    """Fail (not skip, not pass) with up.sh's reason when a component the test needs is not running."""
    missing = {c: plane["components"].get(c, "missing: unknown") for c in components}
    missing = {c: why for c, why in missing.items() if why != "ok"}
    if missing:
        pytest.fail(f"test control plane components not available: {missing}", pytrace=False)


@pytest.fixture
def namespace(plane):
    """A fresh namespace per test, deleted afterwards."""
    from kubernetes import client, config

    require(plane, "kube-apiserver")
    api = client.CoreV1Api(config.new_client_from_config(plane["kubeconfig"]))
    name = f"kft-{uuid.uuid4().hex[:8]}"
    api.create_namespace({"metadata": {"name": name}})
    yield name
    api.delete_namespace(name)


@pytest.fixture
def k8s_config(plane, namespace):
    from kubeflow_trainer_k8s import KubernetesBackendConfig

    return KubernetesBackendConfig(config_file=plane["kubeconfig"], namespace=namespace)
