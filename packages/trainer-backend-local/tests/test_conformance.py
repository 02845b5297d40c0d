"""The LocalProcess backend passes the conformance kit with real torchrun and real torch."""

from __future__ import annotations

import pytest

from kubeflow_trainer.testing import BackendConformance


class TestLocalConformance(BackendConformance):
    backend = "local"
    torch_available = True

    @pytest.fixture
    def backend_config(self, local_config):
        return local_config
