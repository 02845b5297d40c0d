"""The Docker backend passes the conformance kit against the real engine."""

from __future__ import annotations

import pytest

from kubeflow_trainer.testing import BackendConformance


class TestDockerConformance(BackendConformance):
    backend = "docker"
    torch_available = True

    @pytest.fixture
    def backend_config(self, docker_config):
        return docker_config
