"""Upstream's ``kubeflow.trainer.backends.localprocess`` (alias package): ``LocalProcessBackendConfig`` from the
local backend distribution, resolved on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["LocalProcessBackendConfig"]


def __getattr__(name: str) -> Any:
    from kubeflow_trainer.lazy import resolve

    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return resolve(__name__, name)
