"""The real-kubelet tier: the test control plane (scripts/k8s/up.sh) plus a real node (node-up.sh): a kubelet
on a separate containerd instance with the bridge CNI and CoreDNS, the test images imported. Pods really run.

Collected only with ``--kubelet-tier`` (``nox -s k8s_kubelet``). A component that cannot be built or started
fails the tests with the script's reason; the node's stop script always runs and must restore the host.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

K8S = Path(__file__).resolve().parents[4] / "scripts" / "k8s"


def _run(script: str, env: dict[str, str], timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(K8S / script)], env=env, check=False, capture_output=True, text=True, timeout=timeout
    )


def host_state(env: dict[str, str]) -> list[str]:
    """The host state the tier can change (scripts/k8s/node-host-state.sh), one line per item."""
    return _run("node-host-state.sh", env, timeout=60).stdout.splitlines()


@pytest.fixture(scope="session")
def node_scripts() -> Any:
    """Run a scripts/k8s/ script with the session's environment: ``node_scripts("node-down.sh")``."""
    return _run


@pytest.fixture(scope="session")
def host_state_now(plane_env: dict[str, str]) -> Any:
    """A callable returning the current host state (scripts/k8s/node-host-state.sh)."""
    return lambda: host_state(plane_env)


@pytest.fixture(scope="session")
def plane_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    run_dir = Path(os.environ.get("KFT_K8S_RUN_DIR") or tmp_path_factory.mktemp("k8s") / "run")
    return dict(os.environ, KFT_K8S_RUN_DIR=str(run_dir))


@pytest.fixture(scope="session")
def plane(plane_env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The control plane with a real node; status = up.sh's components.json plus ``node`` (node-up.sh's)."""
    env = plane_env
    run_dir = Path(env["KFT_K8S_RUN_DIR"])
    build = _run("node-build.sh", env)
    if build.returncode != 0:
        pytest.fail(f"the real-kubelet tier did not build: {build.stderr[-3000:]}", pytrace=False)
    before = host_state(env)
    up = _run("up.sh", env, timeout=600)
    status_file = run_dir / "components.json"
    if not status_file.exists():
        pytest.fail(f"the test control plane did not start: {up.stdout[-2000:]}{up.stderr[-2000:]}", pytrace=False)
    node_up = _run("node-up.sh", env, timeout=900)
    try:
        node_file = run_dir / "node" / "status.json"
        node = json.loads(node_file.read_text()) if node_file.exists() else {"ok": False, "reason": "no status"}
        if node_up.returncode != 0 or not node["ok"]:
            pytest.fail(f"the real node did not start: {node.get('reason')}\n{node_up.stderr[-3000:]}", pytrace=False)
        status = json.loads(status_file.read_text())
        status["node"] = node
        # What node-up.sh recorded, after cleaning a stale node tier of an earlier (killed) session if any.
        before = (run_dir / "node" / "host-before.txt").read_text().splitlines()
        status["host_before"] = before
        yield status
    finally:
        if not os.environ.get("KFT_K8S_KEEP"):
            node_down = _run("node-down.sh", env, timeout=300)
            _run("down.sh", env, timeout=120)
            after = host_state(env)
            assert node_down.returncode == 0, f"node-down.sh left host changes:\n{node_down.stderr[-3000:]}"
            assert after == before, f"host state differs after node-down.sh: {sorted(set(after) ^ set(before))}"
