"""The Docker engine passes the engine kit, and what a job creates is what its dry run showed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from conftest import TEST_IMAGE

from kubeflow_trainer import CustomTrainer, TrainerClient
from kubeflow_trainer.options import Name
from kubeflow_trainer_containers.testing import EngineConformance
from kubeflow_trainer_docker import DockerBackendConfig
from kubeflow_trainer_docker.engine import DockerEngine


class TestDockerEngine(EngineConformance):
    @pytest.fixture
    def engine(self, docker_config: DockerBackendConfig) -> Iterator[DockerEngine]:
        engine = DockerEngine(docker_config)
        yield engine
        engine.close()

    @pytest.fixture
    def image(self) -> str:
        return TEST_IMAGE


def hello() -> None:
    print("hello")


def check_matches(attrs: dict[str, Any], native: dict[str, Any]) -> None:
    """docker inspect of a created container against the docker-py create kwargs the dry run showed."""
    config, host = attrs["Config"], attrs["HostConfig"]
    assert config["Image"] == native["image"] and attrs["Name"] == f"/{native['name']}"
    assert config["Cmd"] == native["command"]
    assert config["Hostname"] == native["hostname"] and config["WorkingDir"] == native["working_dir"]
    assert native["labels"].items() <= config["Labels"].items()  # the image's own labels come on top
    env = dict(e.split("=", 1) for e in config["Env"])
    assert native["environment"].items() <= env.items()  # the image's ENV (PATH...) comes on top
    assert host["NanoCpus"] == native["nano_cpus"] and host["Memory"] == native["mem_limit"]
    assert host["ShmSize"] == native["shm_size"]
    assert set(attrs["NetworkSettings"]["Networks"]) == {native["network"]}
    volumes = {m["Name"]: m["Destination"] for m in attrs["Mounts"] if m["Type"] == "volume"}
    assert volumes == {name: mount["bind"] for name, mount in native["volumes"].items()}


def test_created_containers_match_the_dry_run(docker_config: DockerBackendConfig) -> None:
    name = f"kft-match-{uuid.uuid4().hex[:6]}"
    trainer = CustomTrainer(func=hello, num_nodes=2, resources_per_node={"cpu": 1, "memory": "1Gi"})
    with TrainerClient(backend_config=docker_config) as client:
        request = client.dry_run(trainer=trainer, options=[Name(name)]).request
        client.train(trainer=trainer, options=[Name(name)])
        sdk = docker.from_env()
        try:
            assert [c.name for c in request.containers] == [f"{name}-node-0", f"{name}-node-1"]
            for spec, native in zip(request.containers, request.engine_requests, strict=True):
                check_matches(sdk.containers.get(spec.name).attrs, native)
            assert sdk.networks.get(request.network.name).attrs["Labels"] == dict(request.network.labels)
            assert sdk.volumes.get(request.volume.name).attrs["Labels"] == dict(request.volume.labels)
        finally:
            client.delete_job(name)
            sdk.close()
