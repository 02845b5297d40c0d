"""Workspaces on Kubernetes without a cluster: the ConfigMap, the runtime patch that mounts it, the size limit,
and the pod side (the shipped bootstrap + launcher unpack it and run the function by reference)."""

from __future__ import annotations

import base64
import importlib
import json
import os
import subprocess
import sys

import pytest

from kubeflow_trainer import CustomTrainer
from kubeflow_trainer.plan import build_plan
from kubeflow_trainer.runtimes import builtin_runtimes
from kubeflow_trainer.workspace import Workspace, WorkspaceTooLargeError
from kubeflow_trainer_k8s.render import BOOTSTRAP, FILES_ENV, WORKSPACE_MANAGER, render_trainjob

PROJECT = {
    "wspkg_k8s/__init__.py": "",
    "wspkg_k8s/consts.py": "FACTOR = 7\n",
    "wspkg_k8s/train.py": (
        "import os\nfrom wspkg_k8s.consts import FACTOR\nSCALE = 3\n\n"
        "def train():\n"
        "    print('VALUE', SCALE * FACTOR, open('configs/base.yaml').read().strip(), os.path.exists('data'))\n"
    ),
    "configs/base.yaml": "lr: 0.5\n",
    ".gitignore": "data/\n",
    "data/big.bin": "0" * 1000,
}


def make_project(root) -> None:
    for rel, text in PROJECT.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    make_project(root)
    monkeypatch.syspath_prepend(str(root))
    yield root, importlib.import_module("wspkg_k8s.train").train
    for name in ("wspkg_k8s", "wspkg_k8s.train", "wspkg_k8s.consts"):
        sys.modules.pop(name, None)


def _plan(trainer):
    (runtime,) = builtin_runtimes()
    return build_plan(backend="kubernetes", runtime=runtime, trainer=trainer, initializer=None, options=None)


def test_configmap_patch_and_pod_side(project, tmp_path):
    from kubeflow_trainer_k8s.backend import KubernetesBackend

    root, train = project
    plan = _plan(CustomTrainer(func=train, num_nodes=2, workspace=str(root)))
    cm = KubernetesBackend._workspace(plan)
    assert cm is not None and cm.name == f"kft-ws-{plan.workspace.digest[:16]}"
    assert [f.path for f in cm.snapshot.files] == [
        ".gitignore", "configs/base.yaml", "wspkg_k8s/__init__.py", "wspkg_k8s/consts.py", "wspkg_k8s/train.py"
    ]  # fmt: skip
    assert cm.body("ns")["binaryData"] and "archive_b64" not in repr(cm)
    tj = render_trainjob(plan, "ns")
    (patch,) = [p for p in tj["spec"]["runtimePatches"] if p["manager"] == WORKSPACE_MANAGER]
    pod = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "kft-workspace", "configMap": {"name": cm.name}}]
    # The pod side: the ConfigMap's key as the kubelet mounts it, then the bootstrap as the container runs it.
    mount = tmp_path / "mount"
    mount.mkdir()
    (mount / "workspace.tar.gz").write_bytes(base64.b64decode(cm.archive_b64))
    env = {e["name"]: e["value"].replace("$$", "$") for e in tj["spec"]["trainer"]["env"]}
    env["KFT_WORKSPACE_ARCHIVE"] = str(mount / "workspace.tar.gz")
    assert set(json.loads(base64.b64decode(env[FILES_ENV]))) == {"train.py", "launch.py", "run_train.py"}
    out = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, sys.executable, "{dir}/run_train.py", "{dir}/train.py"],
        env={k: v for k, v in {**os.environ, **env}.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "VALUE 21 lr: 0.5 False"


def test_oversize_is_refused_before_submit_with_the_limit_and_the_alternative(project):
    from kubeflow_trainer_k8s.backend import KubernetesBackend

    root, train = project
    (root / "weights.bin").write_bytes(os.urandom(1_200_000))  # random: does not compress
    plan = _plan(CustomTrainer(func=train, workspace=Workspace(path=str(root))))
    with pytest.raises(WorkspaceTooLargeError, match=r"at most 976\.6 KiB.*weights\.bin.*image") as info:
        KubernetesBackend._workspace(plan)
    assert info.value.limit == 1_000_000
