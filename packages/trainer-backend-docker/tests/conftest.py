"""The Docker backend's tests run against a real Docker engine with the locally built test image
(scripts/containers/setup-engines.sh and build-test-image.sh, run by scripts/test-all.sh)."""

from __future__ import annotations

import os
import subprocess

import pytest

from kubeflow_trainer_docker import DockerBackendConfig

TEST_IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")


@pytest.fixture(scope="session", autouse=True)
def _engine_ready() -> None:
    probe = subprocess.run(["docker", "image", "inspect", TEST_IMAGE], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.fail(
            f"the Docker engine or the test image {TEST_IMAGE} is missing ({probe.stderr.strip()}); run "
            "scripts/containers/setup-engines.sh docker && scripts/containers/build-test-image.sh docker",
            pytrace=False,
        )


@pytest.fixture
def docker_config() -> DockerBackendConfig:
    return DockerBackendConfig(image=TEST_IMAGE, pull_policy="Never", stop_timeout=2)
