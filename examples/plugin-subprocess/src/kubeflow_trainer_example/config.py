"""Configuration of the example backend (kept apart so the plugin module imports nothing heavy)."""

from __future__ import annotations

import os
import tempfile

from pydantic import Field

from kubeflow_trainer import BackendConfig


def _default_dir() -> str:
    return os.environ.get("KFT_EXAMPLE_STATE_DIR") or os.path.join(tempfile.gettempdir(), "kft-subprocess-example")


class SubprocessBackendConfig(BackendConfig):
    """Where job directories live."""

    state_dir: str = Field(default_factory=_default_dir)
