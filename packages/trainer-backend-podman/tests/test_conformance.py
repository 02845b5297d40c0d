"""The Podman backend passes the conformance kit against the real Podman service."""

from __future__ import annotations

import os

import pytest

from kubeflow_trainer.testing import BackendConformance
from kubeflow_trainer_podman import PodmanBackendConfig

TEST_IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")


class TestPodmanConformance(BackendConformance):
    backend = "podman"
    torch_available = True

    @pytest.fixture
    def backend_config(self):
        return PodmanBackendConfig(image=TEST_IMAGE, pull_policy="Never", stop_timeout=2)
