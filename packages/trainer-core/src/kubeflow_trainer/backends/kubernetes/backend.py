"""Upstream's ``kubeflow.trainer.backends.kubernetes.backend``: ``KubernetesBackend`` and
``KubernetesBackendConfig`` from the Kubernetes backend distribution (``pip install 'trainer-core[k8s]'``),
resolved on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["KubernetesBackend", "KubernetesBackendConfig"]  # noqa: F822 - resolved by __getattr__


def __getattr__(name: str) -> Any:
    from kubeflow_trainer.lazy import resolve

    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return resolve(__name__, name)
