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
from kubeflow_trainer_containers.testing import EngineConformance, check_finished_job_releases_its_network
from kubeflow_trainer_docker import DockerBackendConfig
from kubeflow_trainer_docker import engine as engine_module
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


JOB_LABEL = "trainer.kubeflow.org/trainjob-name"


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
    if "network" in native:  # the job's own network (several nodes)
        assert set(attrs["NetworkSettings"]["Networks"]) == {native["network"]}
    else:  # one node: the engine's default bridge, nothing per job
        assert native["network_mode"] == "bridge" and host["NetworkMode"] == "bridge"
        assert set(attrs["NetworkSettings"]["Networks"]) == {"bridge"}
    volumes = {m["Name"]: m["Destination"] for m in attrs["Mounts"] if m["Type"] == "volume"}
    assert volumes == {name: mount["bind"] for name, mount in native["volumes"].items()}


@pytest.mark.parametrize("nodes", [1, 2])
def test_created_containers_match_the_dry_run(nodes: int, docker_config: DockerBackendConfig) -> None:
    name = f"kft-match-{uuid.uuid4().hex[:6]}"
    trainer = CustomTrainer(func=hello, num_nodes=nodes, resources_per_node={"cpu": 1, "memory": "1Gi"})
    with TrainerClient(backend_config=docker_config) as client:
        request = client.dry_run(trainer=trainer, options=[Name(name)]).request
        client.train(trainer=trainer, options=[Name(name)])
        sdk = docker.from_env()
        try:
            assert [c.name for c in request.containers] == [f"{name}-node-{i}" for i in range(nodes)]
            for spec, native in zip(request.containers, request.engine_requests, strict=True):
                check_matches(sdk.containers.get(spec.name).attrs, native)
            if nodes > 1:
                assert request.network is not None
                assert sdk.networks.get(request.network.name).attrs["Labels"] == dict(request.network.labels)
            else:  # no network of the job's own, and the job still runs to its end
                assert request.network is None
                assert sdk.networks.list(filters={"label": f"{JOB_LABEL}={name}"}) == []
                assert client.wait_for_job_status(name, timeout=120, polling_interval=0.5).status == "Complete"
                assert "hello" in list(client.get_job_logs(name))
            assert sdk.volumes.get(request.volume.name).attrs["Labels"] == dict(request.volume.labels)
        finally:
            client.delete_job(name)
            sdk.close()


def test_a_finished_jobs_network_is_released_and_the_job_still_reads(
    docker_config: DockerBackendConfig, tmp_path
) -> None:
    check_finished_job_releases_its_network(docker_config, tmp_path)


def test_followed_logs_are_the_same_through_the_fast_and_the_public_path(
    docker_config: DockerBackendConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A followed log is read through docker-py's private request helpers (4x faster); a docker-py release
    without them gets the public path. Both give the same bytes, stdout and stderr interleaved as written."""
    engine = DockerEngine(docker_config)
    sdk = docker.from_env()
    script = "for i in $(seq 1 300); do echo out$i; echo err$i >&2; done"
    container = sdk.containers.run(
        TEST_IMAGE, ["sh", "-c", script], detach=True, name=f"kft-logs-{uuid.uuid4().hex[:8]}"
    )
    try:
        container.wait(timeout=60)
        fast = b"".join(engine.logs(container.id, follow=True))
        # (the helpers are what docker-py itself calls for every request; a release without them is simulated
        # by asking for one that does not exist)
        monkeypatch.setattr(engine_module, "_PRIVATE_LOG_API", ("_get", "_no_such_request_helper"))
        public = b"".join(engine.logs(container.id, follow=True))
        expected = "".join(f"out{i}\nerr{i}\n" for i in range(1, 301)).encode()
        assert sorted(fast.splitlines()) == sorted(expected.splitlines())
        assert fast == public
    finally:
        container.remove(force=True)
        engine.close()
        sdk.close()
