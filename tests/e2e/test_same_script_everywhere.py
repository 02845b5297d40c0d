"""One user script, unchanged, on local, docker and podman: only KUBEFLOW_TRAINER_BACKEND differs.

The script is examples/quickstart.py (a 2-node gloo training loop). Container backends take the test image
from KUBEFLOW_TRAINER_IMAGE, as a user without registry access would; Podman's socket from CONTAINER_HOST.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PODMAN_URL, TEST_IMAGE

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def run_example(script: Path, backend: str, tmp_path: Path) -> str:
    """Run an example script unchanged, choosing only the backend (and the test image), as a user would."""
    env = {
        **os.environ,
        "KUBEFLOW_TRAINER_BACKEND": backend,
        "KUBEFLOW_TRAINER_IMAGE": TEST_IMAGE,
        "KUBEFLOW_TRAINER_PULL_POLICY": "Never",
        "CONTAINER_HOST": PODMAN_URL,
        "KUBEFLOW_TRAINER_LOCAL_STATE_DIR": str(tmp_path / "state"),
    }
    out = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream: the progress display (stderr) in order with the logs
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-6000:]
    return out.stdout


@pytest.mark.parametrize("backend", ["local", "docker", "podman"])
def test_quickstart_runs_unchanged(backend: str, tmp_path: Path) -> None:
    stdout = run_example(SCRIPT, backend, tmp_path)
    for rank in (0, 1):
        assert f"[node-{rank}] rank {rank}/2 epoch 2 mean loss" in stdout, stdout[-3000:]
    assert "Complete; steps: [('node-0', 'Complete'), ('node-1', 'Complete')]" in stdout
    if backend != "local":
        return  # the containers run at once (nothing to install): the display has nothing to show
    # the progress display (plain lines off a terminal) shows the job's preparation before its first log line
    name = stdout.split("started ", 1)[1].split()[0]
    lines = stdout.splitlines()
    first_log = next(i for i, line in enumerate(lines) if line.startswith("[node-"))
    assert any(line.startswith(f"[{name}] ") for line in lines[:first_log]), stdout[-3000:]


@pytest.mark.parametrize("backend", ["local", "docker", "podman"])
def test_initializers_example_runs_unchanged(backend: str, tmp_path: Path) -> None:
    """examples/initializers.py: a local dataset directory and checkpoint file reach the function everywhere."""
    stdout = run_example(SCRIPT.parent / "initializers.py", backend, tmp_path)
    assert "[node-0] 50 rows from /" in stdout and "w=3.0" in stdout, stdout[-3000:]
    assert "('dataset-initializer', 'Complete'), ('model-initializer', 'Complete'), ('node-0', 'Complete')" in (stdout)
