"""Fixtures of the LocalProcess backend tests: a private state dir per test, one shared environment cache
(outside the repository, keyed like the backend's own) so torch is installed once per machine.

``KFT_TEST_HOT_STARTS=0`` (nox session ``local_torchrun``) runs every test with hot starts off; by default they
are on, as in the backend's default configuration. The zygotes of a run live in a private directory of the
run and are stopped when it ends."""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from kubeflow_trainer_local import LocalProcessBackendConfig
from kubeflow_trainer_local.config import default_cache_dir
from kubeflow_trainer_local.hotstart import stop_zygotes

HOT_STARTS = os.environ.get("KFT_TEST_HOT_STARTS", "1") != "0"


@pytest.fixture(scope="session")
def hot_start_dir():
    path = tempfile.mkdtemp(prefix="kft-hot-")  # mode 0700
    yield path
    stop_zygotes(path)
    deadline = time.monotonic() + 10
    while any(n.endswith(".sock") for n in os.listdir(path)) and time.monotonic() < deadline:
        time.sleep(0.1)  # each zygote removes its socket as it exits
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def local_config(tmp_path, hot_start_dir) -> LocalProcessBackendConfig:
    cache = os.environ.get("KFT_TEST_ENV_CACHE") or default_cache_dir()
    return LocalProcessBackendConfig(
        state_dir=str(tmp_path / "state"),
        cache_dir=cache,
        stop_grace_seconds=2,
        hot_starts=HOT_STARTS,
        hot_start_dir=hot_start_dir,
        hot_start_idle_seconds=120,
    )
