"""``kubeflow-trainer`` against the real Docker engine (every command) and Podman (doctor, a container
command job): output and exit codes."""

from __future__ import annotations

import pytest
from conftest import TEST_IMAGE, container_args, require_image, run_cli, unique

JOBS = "tests/cli/jobs.py"


def test_docker_function_job_two_nodes_follow_and_failure() -> None:
    require_image("docker")
    args = container_args("docker")
    name = unique("cli-fn")
    ok = run_cli("run", f"{JOBS}:hello", *args, "--name", name, "--nodes", "2", "--arg", "greeting=hey", "-f")
    try:
        assert ok.code == 0, ok
        assert "[node-0] hey 0 from rank 0" in ok.out and "[node-1] hey 0 from rank 1" in ok.out, ok.out
        listed = run_cli("list", *args, "-o", "json").json()
        assert any(j["name"] == name and j["status"] == "Complete" for j in listed)
        got = run_cli("get", name, *args)
        assert got.code == 0 and "status:  Complete" in got.out and "node-1" in got.out
        # torchrun's agents may add their own lines (an exit-barrier note) after the function's
        assert run_cli("logs", name, *args, "--step", "node-1").out.splitlines()[0] == "hey 0 from rank 1"
        every = run_cli("logs", name, *args, "--all").out.splitlines()
        assert {"[node-0] hey 0 from rank 0", "[node-1] hey 0 from rank 1"} <= set(every), every
        # Docker keeps only its last 256 events: on an engine other jobs share they may be gone already
        events = run_cli("events", name, *args, "-o", "json")
        assert events.code == 0, events
        assert all(e["involved_object_name"].startswith(("node-", name)) for e in events.json()), events
    finally:
        assert run_cli("delete", name, *args).code == 0
    assert run_cli("get", name, *args).code == 3

    failed = run_cli("run", f"{JOBS}:boom", *args, "--follow", "--delete")
    assert failed.code == 1, failed
    assert "ValueError: the learning rate is negative" in failed.both


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_container_command_job_and_doctor(engine: str) -> None:
    require_image(engine)
    args = container_args(engine)
    doctor = run_cli("doctor", *args, "-o", "json")
    assert doctor.code == 0, doctor
    checks = {c["name"]: c for c in doctor.json()["checks"]}
    assert checks[f"{engine.capitalize()} engine reachable"]["detail"].startswith("version ")
    assert checks[f"trainer image {TEST_IMAGE}"]["status"] == "ok"

    name = unique("cli-ctr")
    dry = run_cli("run", *args, "--image", TEST_IMAGE, "--name", name, "--dry-run", "-o", "json", "--", "true")
    assert dry.code == 0 and dry.json()["name"] == name, dry
    started = run_cli(
        "run",
        *args,
        "--image",
        TEST_IMAGE,
        "--name",
        name,
        "--env",
        "WHO=cli",
        "--",
        "python",
        "-c",
        "import os; print('container says', os.environ['WHO'])",
    )
    try:
        assert started.code == 0 and started.out.strip() == name, started
        assert run_cli("wait", name, *args, "--timeout", "600").code == 0
        assert run_cli("logs", name, *args).out.splitlines() == ["container says cli"]
    finally:
        assert run_cli("delete", name, *args).code == 0
    taken = run_cli("delete", name, *args)
    assert taken.code == 3


def test_docker_unreachable_engine_exits_4_with_the_fix() -> None:
    args = ["--backend", "docker", "-c", "host=unix:///nonexistent/docker.sock"]
    doctor = run_cli("doctor", *args)
    assert doctor.code == 4 and "Start the engine" in doctor.out, doctor
    listed = run_cli("list", *args)
    assert listed.code == 4 and "cannot reach the Docker engine" in listed.err, listed
