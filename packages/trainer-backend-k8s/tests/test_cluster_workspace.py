"""Workspaces against the real kube-apiserver with the Trainer webhook and controllers, JobSet,
kube-controller-manager, kube-scheduler and KWOK: the TrainJob and its ConfigMap are accepted, the pods carry
the mount, a resubmit reuses the ConfigMap, delete_job leaves nothing behind, and oversize creates nothing."""

from __future__ import annotations

import os
import time

import pytest
from conftest import require
from test_workspace_render import project  # noqa: F401 - the project fixture, shared

from kubeflow_trainer import CustomTrainer, Name, TrainerClient
from kubeflow_trainer.workspace import WorkspaceTooLargeError


@pytest.fixture
def client(k8s_config):
    with TrainerClient(k8s_config) as c:
        yield c


def _core(plane):
    from kubernetes import client as k8s
    from kubernetes import config

    return k8s.CoreV1Api(config.new_client_from_config(plane["kubeconfig"]))


def test_workspace_configmap_is_mounted_in_the_pods_and_shared_by_content(client, plane, project):  # noqa: F811
    require(plane, "trainer", "webhooks", "jobset", "kube-controller-manager", "kube-scheduler", "kwok", "nodes")
    root, func = project
    core, ns = _core(plane), client.backend.namespace
    trainer = CustomTrainer(func=func, num_nodes=2, workspace=str(root))
    first = client.train(trainer=trainer, options=[Name("ws-one")])
    second = client.train(trainer=trainer, options=[Name("ws-two")])  # unchanged: the same ConfigMap
    (cm,) = core.list_namespaced_config_map(ns, label_selector="trainer.kubeflow.org/workspace").items
    assert sorted(o.name for o in cm.metadata.owner_references) == ["ws-one", "ws-two"]
    assert list(cm.binary_data) == ["workspace.tar.gz"]
    deadline = time.monotonic() + 120
    pods: list = []
    while time.monotonic() < deadline and len(pods) < 2:
        pods = core.list_namespaced_pod(ns, label_selector=f"jobset.sigs.k8s.io/jobset-name={first}").items
        time.sleep(0.5)
    assert len(pods) == 2, "the controllers made no pods"
    for pod in pods:
        volumes = {v.name: v for v in pod.spec.volumes}
        assert volumes["kft-workspace"].config_map.name == cm.metadata.name
        (node,) = [c for c in pod.spec.containers if c.name == "node"]
        mounts = {m.name: m for m in node.volume_mounts}
        assert mounts["kft-workspace"].mount_path == "/opt/kft/workspace" and mounts["kft-workspace"].read_only
        env = {e.name: e.value for e in node.env}
        assert env["KFT_WORKSPACE_ARCHIVE"] == "/opt/kft/workspace/workspace.tar.gz"
    client.delete_job(first)
    cm = core.read_namespaced_config_map(cm.metadata.name, ns)
    assert [o.name for o in cm.metadata.owner_references] == ["ws-two"]
    client.delete_job(second)
    assert not core.list_namespaced_config_map(ns, label_selector="trainer.kubeflow.org/workspace").items


def test_oversize_workspace_creates_nothing(client, plane, project):  # noqa: F811
    require(plane, "trainer", "webhooks")
    root, func = project
    (root / "weights.bin").write_bytes(os.urandom(1_200_000))
    with pytest.raises(WorkspaceTooLargeError, match=r"weights\.bin"):
        client.train(trainer=CustomTrainer(func=func, workspace=str(root)), options=[Name("ws-big")])
    core, ns = _core(plane), client.backend.namespace
    assert not core.list_namespaced_config_map(ns, label_selector="trainer.kubeflow.org/workspace").items
    assert not client.backend.custom.list_namespaced_custom_object("trainer.kubeflow.org", "v1alpha1", ns, "trainjobs")[
        "items"
    ]
