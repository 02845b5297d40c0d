"""The Podman engine passes the engine kit, and what a job creates is what its dry run showed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from podman import PodmanClient

from kubeflow_trainer import CustomTrainer, TrainerClient
from kubeflow_trainer.options import Name
from kubeflow_trainer_containers.testing import EngineConformance
from kubeflow_trainer_podman import PodmanBackendConfig
from kubeflow_trainer_podman.engine import PodmanEngine

TEST_IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")


@pytest.fixture
def podman_config() -> PodmanBackendConfig:
    return PodmanBackendConfig(image=TEST_IMAGE, pull_policy="Never", stop_timeout=2)


class TestPodmanEngine(EngineConformance):
    @pytest.fixture
    def engine(self, podman_config: PodmanBackendConfig) -> Iterator[PodmanEngine]:
        engine = PodmanEngine(podman_config)
        yield engine
        engine.close()

    @pytest.fixture
    def image(self) -> str:
        return TEST_IMAGE


def hello() -> None:
    print("hello")


def check_matches(attrs: dict[str, Any], native: dict[str, Any]) -> None:
    """podman inspect of a created container against the podman-py create kwargs the dry run showed."""
    config, host = attrs["Config"], attrs["HostConfig"]
    assert attrs["ImageName"] == native["image"] and attrs["Name"] == native["name"]
    assert config["Cmd"] == native["command"]
    assert config["Hostname"] == native["hostname"] and config["WorkingDir"] == native["working_dir"]
    assert native["labels"].items() <= config["Labels"].items()  # the image's own labels come on top
    env = dict(e.split("=", 1) for e in config["Env"])
    assert native["environment"].items() <= env.items()  # the image's ENV (PATH...) comes on top
    assert host["CpuQuota"] == native["cpu_quota"] and host["CpuPeriod"] == native["cpu_period"]
    assert host["Memory"] == native["mem_limit"] and host["ShmSize"] == native["shm_size"]
    assert set(attrs["NetworkSettings"]["Networks"]) == set(native["networks"])
    volumes = {m["Name"]: m["Destination"] for m in attrs["Mounts"] if m["Type"] == "volume"}
    assert volumes == {name: mount["bind"] for name, mount in native["volumes"].items()}


def test_created_containers_match_the_dry_run(podman_config: PodmanBackendConfig) -> None:
    name = f"kft-match-{uuid.uuid4().hex[:6]}"
    trainer = CustomTrainer(func=hello, num_nodes=2, resources_per_node={"cpu": 1, "memory": "1Gi"})
    with TrainerClient(backend_config=podman_config) as client:
        request = client.dry_run(trainer=trainer, options=[Name(name)]).request
        client.train(trainer=trainer, options=[Name(name)])
        sdk = PodmanClient(base_url=podman_config.host)
        try:
            assert [c.name for c in request.containers] == [f"{name}-node-0", f"{name}-node-1"]
            for spec, native in zip(request.containers, request.engine_requests, strict=True):
                check_matches(sdk.containers.get(spec.name).attrs, native)
        finally:
            client.delete_job(name)
            sdk.close()


def test_followed_logs_outlast_the_client_timeout(podman_config: PodmanBackendConfig) -> None:
    """A container silent for longer than the client's timeout (a pip install) is still followed to its end:
    podman-py keeps the client timeout on streams, which once broke get_job_logs(follow=True)."""
    name = f"kft-silent-{uuid.uuid4().hex[:6]}"
    client = PodmanClient(base_url=podman_config.host)
    client.containers.run(TEST_IMAGE, ["sh", "-c", "echo first; sleep 6; echo second"], name=name, detach=True)
    engine = PodmanEngine(podman_config.model_copy(update={"timeout": 2}))
    try:
        assert b"".join(engine.logs(name, follow=True)) == b"first\nsecond\n"
        assert list(engine.logs(f"{name}-gone", follow=True)) == []
    finally:
        engine.close()
        client.containers.get(name).remove(force=True)
        client.close()
