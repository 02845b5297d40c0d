"""A cluster without the Kubeflow Trainer CRDs: the error says so and how to install them. Runs last: it
removes the TrainJob CRD from the test control plane and puts it back."""

from __future__ import annotations

import time

import pytest
from conftest import require

from kubeflow_trainer import BackendError, CustomTrainer, TrainerClient

CRD = "trainjobs.trainer.kubeflow.org"


def train_fn() -> None:
    print("x")


def _wait(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_missing_crds_say_how_to_install(plane, k8s_config):
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    require(plane, "crds")
    ext = client.ApiextensionsV1Api(config.new_client_from_config(plane["kubeconfig"]))
    saved = ext.api_client.sanitize_for_serialization(ext.read_custom_resource_definition(CRD))
    saved["metadata"] = {k: v for k, v in saved["metadata"].items() if k in ("name", "labels", "annotations")}
    saved.pop("status", None)

    def gone() -> bool:
        try:
            ext.read_custom_resource_definition(CRD)
        except ApiException as exc:
            return exc.status == 404
        return False

    ext.delete_custom_resource_definition(CRD)
    try:
        _wait(gone, "the CRD to be deleted")
        c = TrainerClient(k8s_config)
        for call in (c.list_jobs, lambda: c.train(trainer=CustomTrainer(func=train_fn))):
            with pytest.raises(BackendError, match=r"CRDs .* are not installed") as info:
                call()
            assert "Install Kubeflow Trainer" in str(info.value)
    finally:
        ext.create_custom_resource_definition(saved)

        def established() -> bool:
            crd = ext.read_custom_resource_definition(CRD)
            return any(cond.type == "Established" and cond.status == "True" for cond in crd.status.conditions or [])

        _wait(established, "the CRD to be re-established")
