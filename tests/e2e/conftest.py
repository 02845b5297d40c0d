"""End-to-end fixtures: the container engines (real Docker engine, real Podman service) and their CLIs.

scripts/test-all.sh starts both (scripts/containers/setup-engines.sh) and builds the test image.
"""

from __future__ import annotations

import os
import subprocess

import pytest

TEST_IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
PODMAN_URL = "unix:///run/podman/podman.sock"
CLI = {"docker": ["docker"], "podman": ["podman", "--remote", "--url", PODMAN_URL]}
LABEL = "trainer.kubeflow.org/trainjob-name"


def cli(engine: str, *args: str) -> str:
    """Run the engine's own CLI (independent of the SDK under test)."""
    return subprocess.run([*CLI[engine], *args], capture_output=True, text=True, check=True).stdout


def engine_objects(engine: str) -> tuple[set[str], set[str], set[str]]:
    """Every container, network and volume the SDK labelled on this engine."""
    flt = f"label={LABEL}"
    names = lambda out: {x for x in out.split() if x}  # noqa: E731
    return (
        names(cli(engine, "ps", "-a", "--filter", flt, "--format", "{{.Names}}")),
        names(cli(engine, "network", "ls", "--filter", flt, "--format", "{{.Name}}")),
        names(cli(engine, "volume", "ls", "--filter", flt, "--format", "{{.Name}}")),
    )


def config_for(engine: str, **overrides: object):  # type: ignore[no-untyped-def]
    settings = {"image": TEST_IMAGE, "pull_policy": "Never", "stop_timeout": 2, **overrides}
    if engine == "docker":
        from kubeflow_trainer_docker import DockerBackendConfig

        return DockerBackendConfig(**settings)
    from kubeflow_trainer_podman import PodmanBackendConfig

    return PodmanBackendConfig(**{"host": PODMAN_URL, **settings})


def require_engine(name: str) -> str:
    """Fail (never skip) with the setup hint when the engine or the test image is missing."""
    probe = subprocess.run([*CLI[name], "image", "inspect", TEST_IMAGE], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.fail(
            f"{name} or the test image {TEST_IMAGE} is missing ({probe.stderr.strip()}); run "
            "scripts/containers/setup-engines.sh && scripts/containers/build-test-image.sh",
            pytrace=False,
        )
    return name


@pytest.fixture(params=["docker", "podman"])
def engine(request: pytest.FixtureRequest) -> str:
    return require_engine(str(request.param))
