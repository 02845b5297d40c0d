"""A missing image is pulled by ``train()`` with a progress display (layers pulled of N; megabytes where the
engine reports them), on the real Docker engine and the real Podman service, from a real OCI registry.

This machine has no registry to pull from, so the test runs one: ``distribution`` (the reference registry,
built from the Go module proxy by scripts/containers/build-registry.sh, cached) on a loopback port with its
own storage. Docker builds an image with one layer no engine has (random bytes) on top of the slim test
image, pushes it there and forgets it; the backends then pull it through their engine's API. Both engines
pull from a loopback registry over plain HTTP (Docker's default; the Podman engine asks for the same).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CLI, config_for, require_engine

from kubeflow_trainer import CustomTrainerContainer, Name, TrainerClient

ROOT = Path(__file__).resolve().parents[2]
SLIM_IMAGE = os.environ.get("KFT_SLIM_IMAGE", "localhost/kubeflow-trainer-test/python:slim")
LAYER_MB = 24


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:<port>``: a running registry, stopped (and its storage removed) at the end."""
    build = subprocess.run(
        ["bash", str(ROOT / "scripts" / "containers" / "build-registry.sh")],
        check=False,
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        pytest.fail(f"the test registry did not build: {build.stderr[-2000:]}", pytrace=False)
    binary = build.stdout.strip().splitlines()[-1]
    home = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    (home / "config.yml").write_text(
        "version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\n"
        f"storage: {{filesystem: {{rootdirectory: {home / 'data'}}}}}\nhttp: {{addr: {address}}}\n"
    )
    proc = subprocess.Popen([binary, "serve", str(home / "config.yml")], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(tuple(address.split(":")), timeout=1).close()  # type: ignore[arg-type]
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the test registry did not start: {proc.communicate()[1][-2000:]}", pytrace=False)
            time.sleep(0.1)
    try:
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def pushed_image(registry: str, tmp_path: Path) -> Iterator[str]:
    """An image in the registry whose top layer no engine has: pushed by Docker, then removed from Docker."""
    require_engine("docker")
    image = f"{registry}/kft/pull-test:{uuid.uuid4().hex[:10]}"
    (tmp_path / "blob").write_bytes(os.urandom(LAYER_MB << 20))
    (tmp_path / "Dockerfile").write_text(f"FROM {SLIM_IMAGE}\nCOPY blob /opt/blob\n")
    for args in (["build", "-q", "-t", image, str(tmp_path)], ["push", "-q", image], ["rmi", image]):
        subprocess.run(["docker", *args], check=True, capture_output=True)
    try:
        yield image
    finally:
        for engine in CLI:
            subprocess.run([*CLI[engine], "rmi", "-f", image], capture_output=True, check=False)


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_train_pulls_a_missing_image_with_progress(
    engine: str, pushed_image: str, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_engine(engine)
    monkeypatch.setenv("KUBEFLOW_TRAINER_PROGRESS", "plain")
    client = TrainerClient(config_for(engine, pull_policy="IfNotPresent"))
    job = f"pull-{engine}-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    client.train(
        trainer=CustomTrainerContainer(image=pushed_image, command=["python3", "-c", "print('pulled and ran')"]),
        options=[Name(job)],
    )
    pulled_in = time.monotonic() - started
    try:
        lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith(f"[{job}] pulling image")]
        counts = [tuple(map(int, m.groups())) for m in (re.search(r": (\d+)/(\d+) layers", x) for x in lines) if m]
        assert counts, f"no progress line with layer counts while {engine} pulled: {lines}"
        done, total = counts[-1]
        assert done == total >= 2, lines  # the slim image's layer and the new one, all pulled at the end
        assert counts[0][0] < total, f"the first line is shown before the pull ends: {lines}"
        if engine == "docker":  # Docker reports bytes; the new layer is about LAYER_MB megabytes
            sizes = [float(m.group(1)) for m in (re.search(r"/([\d.]+) MB\)$", x) for x in lines) if m]
            assert sizes and sizes[-1] >= LAYER_MB, lines
        finished = client.wait_for_job_status(job, timeout=120, polling_interval=0.5)
        assert finished.status == "Complete", finished.message
        assert "pulled and ran" in "".join(client.get_job_logs(job))
        print(f"{engine}: pulled in {pulled_in:.1f}s, progress lines: {lines}")
    finally:
        client.delete_job(job)
