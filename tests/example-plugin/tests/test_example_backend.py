"""The example third-party backend passes the same conformance kit as the built-in backends."""

from __future__ import annotations

import pytest

from kubeflow_trainer.testing import BackendConformance
from kubeflow_trainer_example import SubprocessBackendConfig


class TestSubprocessExampleConformance(BackendConformance):
    backend = "subprocess-example"
    torch_available = False
    job_timeout = 60

    @pytest.fixture
    def backend_config(self, tmp_path):
        return SubprocessBackendConfig(state_dir=str(tmp_path / "state"))
