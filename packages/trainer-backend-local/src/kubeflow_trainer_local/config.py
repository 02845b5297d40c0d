"""Configuration of the LocalProcess backend."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field

from kubeflow_trainer import BackendConfig

STATE_ENV = "KUBEFLOW_TRAINER_LOCAL_STATE_DIR"
CACHE_ENV = "KUBEFLOW_TRAINER_LOCAL_CACHE_DIR"
DATA_CACHE_ENV = "KUBEFLOW_TRAINER_LOCAL_DATA_CACHE_DIR"
APP = "kubeflow-trainer"


def default_state_dir() -> str:
    """``$KUBEFLOW_TRAINER_LOCAL_STATE_DIR``, else ``$XDG_STATE_HOME/kubeflow-trainer/local``."""
    if os.environ.get(STATE_ENV):
        return os.environ[STATE_ENV]
    import platformdirs

    return os.path.join(platformdirs.user_state_dir(APP), "local")


def default_cache_dir() -> str:
    """``$KUBEFLOW_TRAINER_LOCAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/kubeflow-trainer/envs``."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    import platformdirs

    return os.path.join(platformdirs.user_cache_dir(APP), "envs")


def default_data_cache_dir() -> str:
    """``$KUBEFLOW_TRAINER_LOCAL_DATA_CACHE_DIR``, else ``$XDG_CACHE_HOME/kubeflow-trainer/data``."""
    if os.environ.get(DATA_CACHE_ENV):
        return os.environ[DATA_CACHE_ENV]
    import platformdirs

    return os.path.join(platformdirs.user_cache_dir(APP), "data")


def default_workspace_cache_dir() -> str:
    """``$XDG_CACHE_HOME/kubeflow-trainer/workspaces``."""
    import platformdirs

    return os.path.join(platformdirs.user_cache_dir(APP), "workspaces")


class LocalProcessBackendConfig(BackendConfig):
    """Settings of the LocalProcess backend.

    Args:
        state_dir: Where job records (spec, status, logs, workspace) live. Default follows XDG.
        cache_dir: Where cached virtualenvs live. Default follows XDG.
        data_cache_dir: Where initializer caches live (``<data_cache_dir>/<cache name>/<source key>``), for
            initializers given ``cache=...``. Default follows XDG.
        workspace_cache_dir: Where workspaces are kept, one copy per content (hard-linked into each job).
        workspace_limit: Largest workspace in bytes (default 2 GiB): it is copied once to the cache on this
            disk; data sets belong in a mounted data directory instead.
        python: Interpreter the job environments are built from. Default: the caller's interpreter.
        system_site_packages: Let job environments see the base interpreter's packages (reuse an installed
            torch). Requirements the base already satisfies are not installed again.
        installer: ``uv`` (fast; the binary ships with the ``uv`` Python package), ``pip``, or ``auto``
            (uv when available, else pip).
        stop_grace_seconds: How long nodes get between SIGTERM and SIGKILL when a job is stopped.
        max_running_jobs: Admission: at most this many jobs of this ``state_dir`` run at once; the others wait,
            status ``Suspended``, in submission order, and start as running jobs end (no client needed).
            Default: two per CPU, at least eight.
        initializer_timeout: Seconds a dataset/model initializer step may take before it fails (default: no
            limit).
        cleanup_venv: Upstream's flag (upstream builds a venv per job and removes it when the job ends unless
            False). Here environments are cached and shared by content, so no job has a venv of its own:
            ``True`` (default) lets ``prune_environments()`` remove a job's environment once the job has ended;
            ``False`` keeps the environment of every job submitted with it for as long as the job exists
            (until ``delete_job``), so it can be inspected or rerun as it was.
        hot_starts: Fork the nodes of a job whose environment is cached from a per-environment process
            (zygote) that has imported torch already, instead of starting torchrun: a warm job then pays
            neither interpreter start-up nor ``import torch``. The nodes get the environment torchrun gives
            its workers; jobs it cannot serve (GPUs visible with a CUDA build of torch, torchrun flags it does
            not honour) run with torchrun, which their events say. ``False``: every node runs torchrun.
        hot_start_idle_seconds: A zygote exits after this many seconds with no node running.
        hot_start_dir: Private directory (0700) of the zygotes' control sockets. Default:
            ``$XDG_RUNTIME_DIR/kubeflow-trainer-hot``, else ``<tmp>/kubeflow-trainer-hot-<uid>``.
    """

    cleanup_venv: bool = True
    state_dir: str = Field(default_factory=default_state_dir)
    cache_dir: str = Field(default_factory=default_cache_dir)
    data_cache_dir: str = Field(default_factory=default_data_cache_dir)
    workspace_cache_dir: str = Field(default_factory=default_workspace_cache_dir)
    workspace_limit: int = Field(default=2 * 1024**3, ge=1)
    python: str | None = None
    system_site_packages: bool = False
    installer: Literal["auto", "uv", "pip"] = "auto"
    stop_grace_seconds: float = Field(default=5.0, ge=0)
    max_running_jobs: int | None = Field(default=None, ge=1)
    initializer_timeout: float | None = Field(default=None, gt=0)
    hot_starts: bool = True
    hot_start_idle_seconds: float = Field(default=300.0, gt=0)
    hot_start_dir: str | None = None
