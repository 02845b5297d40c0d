"""Fixtures for the compatibility suite: the real test control plane (scripts/k8s), the real container
engines (scripts/containers) and the locks that serialize them with other suites on this machine.

Components that cannot start make the tests that need them fail with the reason (never skip)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # porting.py, substitutions.py
sys.path.insert(0, str(HERE.parent))  # support/
from support.plane import K8S_LOCK, locked, started_plane  # noqa: E402

ROOT = HERE.parents[1]
K8S = ROOT / "scripts" / "k8s"
CONTAINERS = ROOT / "scripts" / "containers"
ENGINES_LOCK = "/tmp/kft-engines.lock"
collect_ignore = ["upstream"]  # vendored upstream examples are run by test_examples.py, not collected
UPSTREAM_VERSION = "0.5.0"
UPSTREAM_VENV = Path(
    os.environ.get("KFT_COMPAT_UPSTREAM_VENV", ROOT / ".bench" / f"compat-kubeflow-{UPSTREAM_VERSION}")
)


@pytest.fixture(scope="session")
def upstream_python() -> Path:
    """``kubeflow==0.5.0`` in its own venv under the ignored .bench/ (created once, then reused)."""
    python = UPSTREAM_VENV / "bin" / "python"
    if not python.exists():
        uv = [sys.executable, "-m", "uv"]
        subprocess.run([*uv, "venv", "--quiet", "--python", sys.executable, str(UPSTREAM_VENV)], check=True)
        subprocess.run(
            [*uv, "pip", "install", "--quiet", "--python", str(python), f"kubeflow=={UPSTREAM_VERSION}"], check=True
        )
    return python


@pytest.fixture(scope="session")
def engines_env() -> dict[str, str]:
    """The engines' environment (DOCKER_HOST, KFT_PODMAN_HOST, the test image names), engines started and
    the test image built for both (both scripts are idempotent and cached)."""
    setup = subprocess.run(
        ["bash", str(CONTAINERS / "setup-engines.sh"), "all"], capture_output=True, text=True, check=False
    )
    env: dict[str, str] = {}
    for line in setup.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export ") :].split("=", 1)
            env[key] = value.strip("'\"")
    if setup.returncode != 0 or "KFT_TORCH_IMAGE" not in env:
        pytest.fail(f"container engines did not start: {setup.stderr[-2000:]}", pytrace=False)
    build = subprocess.run(
        ["bash", str(CONTAINERS / "build-test-image.sh"), "all"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )
    if build.returncode != 0:
        pytest.fail(f"test image build failed: {build.stderr[-2000:]}", pytrace=False)
    return env


@pytest.fixture(scope="session")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The real control plane, started once for the session under the k8s plane lock (fixed ports)."""
    run_dir = Path(os.environ.get("KFT_K8S_RUN_DIR") or tmp_path_factory.mktemp("k8s") / "run")
    with locked(K8S_LOCK), started_plane(run_dir) as status:
        yield status


@pytest.fixture
def k8s_namespace(plane: dict[str, object], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A fresh namespace and a kubeconfig whose current context uses it (as a user's would)."""
    import yaml
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(str(plane["kubeconfig"])))
    name = f"compat-{uuid.uuid4().hex[:8]}"
    api.create_namespace({"metadata": {"name": name}})
    kubeconfig = yaml.safe_load(Path(str(plane["kubeconfig"])).read_text())
    current = kubeconfig["current-context"]
    for ctx in kubeconfig["contexts"]:
        if ctx["name"] == current:
            ctx["context"]["namespace"] = name
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    try:
        yield name, path
    finally:
        api.delete_namespace(name)
