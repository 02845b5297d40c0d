"""Container backends beyond the kit, on the real Docker engine and the real Podman service, with the locally
built torch image. Every test runs on both engines: the shared backend must behave the same."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import TEST_IMAGE, cli, config_for, engine_objects

from kubeflow_trainer import (
    AlreadyExistsError,
    CustomTrainer,
    InvalidRequestError,
    JobFailedError,
    Name,
    TrainerClient,
)


def sleeper(seconds: float) -> None:
    import os
    import time

    print(f"NODE {os.environ['PET_NODE_RANK']} up", flush=True)
    time.sleep(seconds)


def counter(n: int) -> None:
    import time

    for i in range(n):
        print(f"COUNT {i}", flush=True)
        time.sleep(0.5)


@pytest.fixture
def client(engine):
    with TrainerClient(config_for(engine)) as c:
        yield c


def test_second_process_lists_streams_and_deletes(client, engine):
    name = client.train(trainer=CustomTrainer(func=counter, func_args={"n": 6}), options=[Name("kft-second")])
    script = textwrap.dedent(f"""
        from kubeflow_trainer import TrainerClient
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from conftest import config_for
        c = TrainerClient(config_for({engine!r}))
        assert {name!r} in [j.name for j in c.list_jobs()]
        lines = [l for l in c.get_job_logs({name!r}, follow=True) if l.startswith("COUNT")]
        print("LINES", len(lines))
        print("STATUS", c.wait_for_job_status({name!r}, timeout=120, polling_interval=0.2).status)
        c.delete_job({name!r})
        print("DELETED")
    """)
    out = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "LINES 6" in out.stdout and "STATUS Complete" in out.stdout and "DELETED" in out.stdout
    containers, networks, volumes = engine_objects(engine)
    assert not any(n.startswith(name) for n in containers)
    assert f"kft-{name}" not in networks and f"kft-{name}" not in volumes


def test_killing_one_node_fails_the_job_and_stops_the_other(client, engine):
    name = client.train(trainer=CustomTrainer(func=sleeper, func_args={"seconds": 300}, num_nodes=2))
    client.wait_for_job_status(name, {"Running"}, timeout=120, polling_interval=0.2)
    cli(engine, "kill", f"{name}-node-1")
    with pytest.raises(JobFailedError, match="node-1"):
        client.wait_for_job_status(name, timeout=60, polling_interval=0.2)
    job = client.get_job(name)
    node0, node1 = job.steps
    assert node1.status == "Failed" and node1.exit_code == 137
    assert node0.status == "Failed" and "node-1 failed" in (node0.message or "")
    assert cli(engine, "inspect", "--format", "{{.State.Status}}", f"{name}-node-0").strip() == "exited"
    client.delete_job(name)


def test_bad_input_leaves_nothing_behind(client, engine):
    before = engine_objects(engine)
    missing = config_for(engine, image="localhost/kft/does-not-exist:1", pull_policy="IfNotPresent")
    with pytest.raises(InvalidRequestError, match="could not be pulled"):
        TrainerClient(missing).train(trainer=CustomTrainer(func=counter, func_args={"n": 1}))
    never = config_for(engine, image="localhost/kft/does-not-exist:1", pull_policy="Never")
    with pytest.raises(InvalidRequestError, match="pull_policy is Never"):
        TrainerClient(never).train(trainer=CustomTrainer(func=counter, func_args={"n": 1}))
    with pytest.raises(ValueError, match="resources_per_node"):
        CustomTrainer(func=counter, func_args={"n": 1}, resources_per_node={"memory": "lots"})
    name = client.train(trainer=CustomTrainer(func=sleeper, func_args={"seconds": 60}), options=[Name("kft-dup")])
    with pytest.raises(AlreadyExistsError):
        client.train(trainer=CustomTrainer(func=counter, func_args={"n": 1}), options=[Name("kft-dup")])
    client.delete_job(name)
    assert engine_objects(engine) == before


def test_dry_run_renders_limits_shm_and_gpu_requests(client, engine):
    trainer = CustomTrainer(
        func=counter, func_args={"n": 1}, num_nodes=2, resources_per_node={"cpu": 2, "memory": "4Gi", "gpu": 2}
    )
    request = client.dry_run(trainer=trainer, options=[Name("kft-render")]).request
    node1 = request.containers[1]
    assert node1.name == "kft-render-node-1" and node1.gpus == 2
    assert node1.cpu == 2 and node1.memory == 4 * 2**30 and node1.shm_size == 2**30  # default 1Gi
    assert "--nproc-per-node=2" in node1.command  # processes follow the GPU count
    assert "--master-addr=kft-render-node-0" in node1.command
    assert node1.command[:2] == ["/bin/sh", "-c"]  # every step runs under the watcher (self-policing)
    watched = node1.command[node1.command.index("--") + 1 :]
    assert watched[0] == "torchrun"  # no packages: no launcher in front
    with_pkgs = CustomTrainer(
        func=counter, func_args={"n": 1}, packages_to_install=["six"], pip_index_urls=["https://i.invalid/simple"]
    )
    launched = client.dry_run(trainer=with_pkgs).request
    launched_cmd = launched.containers[0].command
    assert launched_cmd[launched_cmd.index("--") + 1 :][:3] == ["python3", "/workspace/.kft/launch.py", "torchrun"]
    assert launched.containers[0].env["KFT_PIP_ARGS"] == '["--index-url", "https://i.invalid/simple"]'
    assert ".kft/launch.py" in launched.files
    assert node1.env["PET_NODE_RANK"] == "1"
    native = request.engine_requests[1]  # exactly what the SDK's containers.create receives
    if engine == "docker":
        assert native["device_requests"] == [
            {"Driver": "", "Count": 2, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}
        ]
        assert native["nano_cpus"] == 2_000_000_000
    else:  # Podman: GPUs through CDI, CPU as quota/period
        assert native["devices"] == ["nvidia.com/gpu=0", "nvidia.com/gpu=1"]
        assert native["cpu_quota"] == 2 * native["cpu_period"]
        assert native["networks"] == {"kft-kft-render": {}}
    assert native["mem_limit"] == 4 * 2**30
    small = CustomTrainer(func=counter, func_args={"n": 1}, resources_per_node={"memory": "1Gi"})
    assert client.dry_run(trainer=small).request.containers[0].shm_size == 2**29  # half the memory
    assert not any(n.startswith("kft-render") for n in engine_objects(engine)[0])  # a dry run creates nothing


def test_packages_are_installed_into_the_container(client):
    # iniconfig: small, pure Python, and not in the test image (six is: Debian's botocore pulls it in)
    name = client.train(trainer=CustomTrainer(func=iniconfig_job, packages_to_install=["iniconfig"]))
    job = client.wait_for_job_status(name, timeout=300, polling_interval=0.5)
    assert job.status == "Complete"
    assert any(line.startswith("INICONFIG /opt/venv/") for line in client.get_job_logs(name))
    client.delete_job(name)


def iniconfig_job() -> None:
    import iniconfig

    print("INICONFIG", iniconfig.__file__, flush=True)


def test_unreachable_engine_is_backend_unavailable(engine):
    from kubeflow_trainer import BackendUnavailableError

    dead = config_for(engine, host="unix:///nonexistent/engine.sock")
    c = TrainerClient(dead)
    for call in (
        c.list_jobs,
        lambda: c.get_job("x"),
        lambda: c.train(trainer=CustomTrainer(func=counter, func_args={"n": 1})),
    ):
        with pytest.raises(BackendUnavailableError, match=r"cannot reach the (Docker engine|Podman service)"):
            call()


def test_wait_is_prompt_after_failure(client):
    name = client.train(trainer=CustomTrainer(func=counter, func_args={"n": "x"}))  # TypeError in the job
    started = time.monotonic()
    with pytest.raises(JobFailedError):
        client.wait_for_job_status(name, timeout=120, polling_interval=2)
    assert time.monotonic() - started < 60
    client.delete_job(name)


def test_an_engine_refusal_mid_creation_leaves_nothing_behind(client, engine, tmp_path):
    """A container named like the job's node 0 but not the SDK's (made with the CLI) makes the engine refuse
    the node after the volume, network, a new cache volume and the initializer container exist: all of them
    are removed again, and the error is typed."""
    from kubeflow_trainer import BackendError, Initializer, UrlDatasetInitializer

    (tmp_path / "data.txt").write_text("x")
    job, cache = "kft-midfail", f"midfail-{os.getpid()}"
    cli(engine, "create", "--name", f"{job}-node-0", TEST_IMAGE, "true")
    try:
        with pytest.raises(BackendError):
            client.train(
                trainer=CustomTrainer(func=counter, func_args={"n": 1}),
                initializer=Initializer(dataset=UrlDatasetInitializer(storage_uri=str(tmp_path), cache=cache)),
                options=[Name(job)],
            )
        containers, networks, volumes = engine_objects(engine)
        assert not any(job in n for n in containers | networks | volumes)
        assert f"kft-cache-{cache}" not in cli(engine, "volume", "ls", "--format", "{{.Name}}").split()
    finally:
        cli(engine, "rm", "-f", f"{job}-node-0")
