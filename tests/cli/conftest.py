"""The ``kubeflow-trainer`` console script as a user runs it: a subprocess of the installed script, with its
output and exit code. Each test's jobs are its own (unique names, a private local state directory)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # support/ (the test control plane)
TEST_IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
PODMAN_URL = "unix:///run/podman/podman.sock"


@dataclass
class Result:
    """What one command printed and returned."""

    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)


def exe() -> str:
    found = shutil.which("kubeflow-trainer", path=os.path.dirname(sys.executable))
    assert found, "the kubeflow-trainer console script is not installed"
    return found


def run_cli(*args: str, timeout: float = 900, env: dict[str, str] | None = None, cwd: Path = ROOT) -> Result:
    """Run ``kubeflow-trainer ARGS`` and return its exit code and output."""
    proc = subprocess.run(
        [exe(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def local_args(tmp_path: Path) -> list[str]:
    """``--backend local`` with a state directory of the test's own (its job list holds only its jobs)."""
    return ["--backend", "local", "--config", f"state_dir={tmp_path / 'state'}"]


def container_args(engine: str) -> list[str]:
    """The engine's backend on the locally built test image (never pulled)."""
    args = ["--backend", engine, "-c", f"image={TEST_IMAGE}", "-c", "pull_policy=Never", "-c", "stop_timeout=2"]
    if engine == "podman":
        args += ["-c", f"host={PODMAN_URL}"]
    return args


def require_image(engine: str) -> None:
    """Fail (never skip) with the setup hint when the engine or the test image is missing."""
    cmd = ["docker"] if engine == "docker" else ["podman", "--remote", "--url", PODMAN_URL]
    probe = subprocess.run([*cmd, "image", "inspect", TEST_IMAGE], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.fail(
            f"{engine} or the test image {TEST_IMAGE} is missing ({probe.stderr.strip()}); run "
            "scripts/containers/setup-engines.sh && scripts/containers/build-test-image.sh",
            pytrace=False,
        )
