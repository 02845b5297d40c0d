"""Fixtures of the LocalProcess backend tests: a private state dir per test, one shared environment cache
(outside the repository, keyed like the backend's own) so torch is installed once per machine."""

from __future__ import annotations

import os

import pytest

from kubeflow_trainer_local import LocalProcessBackendConfig
from kubeflow_trainer_local.config import default_cache_dir


@pytest.fixture
def local_config(tmp_path) -> LocalProcessBackendConfig:
    cache = os.environ.get("KFT_TEST_ENV_CACHE") or default_cache_dir()
    return LocalProcessBackendConfig(state_dir=str(tmp_path / "state"), cache_dir=cache, stop_grace_seconds=2)
