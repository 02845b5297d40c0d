"""Upstream's ``kubeflow.trainer.backends.container.backend``: the shared container backend and its config, from
trainer-containers (installed with the docker or podman backend), resolved on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["ContainerBackend", "ContainerBackendConfig"]  # noqa: F822 - resolved by __getattr__


def __getattr__(name: str) -> Any:
    from kubeflow_trainer.lazy import resolve

    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return resolve(__name__, name)
