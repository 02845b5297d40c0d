"""The conformance kit over every installed backend, built-in and third-party alike.

One test class per name that discovery returns; a backend with no entry in SETTINGS runs with its default
configuration. Settings isolate state per test and say whether jobs can import torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from kubeflow_trainer import available_backends
from kubeflow_trainer.testing import BackendConformance


def _local(tmp_path: Any) -> Any:
    from kubeflow_trainer_local import LocalProcessBackendConfig
    from kubeflow_trainer_local.config import default_cache_dir

    return LocalProcessBackendConfig(
        state_dir=str(tmp_path / "state"), cache_dir=default_cache_dir(), stop_grace_seconds=2
    )


def _example(tmp_path: Any) -> Any:
    from kubeflow_trainer_example import SubprocessBackendConfig

    return SubprocessBackendConfig(state_dir=str(tmp_path / "state"))


def _docker(_tmp_path: Any) -> Any:
    from kubeflow_trainer_docker import DockerBackendConfig

    image = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
    return DockerBackendConfig(image=image, pull_policy="Never", stop_timeout=2)


def _podman(_tmp_path: Any) -> Any:
    from kubeflow_trainer_podman import PodmanBackendConfig

    image = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
    return PodmanBackendConfig(image=image, pull_policy="Never", stop_timeout=2)


SETTINGS: dict[str, tuple[Callable[[Any], Any], dict[str, Any]]] = {
    "local": (_local, {"torch_available": True}),
    "subprocess-example": (_example, {"torch_available": False}),
    "docker": (_docker, {"torch_available": True}),
    "podman": (_podman, {"torch_available": True}),
}

INSTALLED = available_backends()
if os.environ.get("KFT_CONFORMANCE_BACKENDS"):
    INSTALLED = [b for b in INSTALLED if b in os.environ["KFT_CONFORMANCE_BACKENDS"].split(",")]


def _make(name: str) -> type:
    make_config, attrs = SETTINGS.get(name, (lambda _tmp: None, {}))

    @pytest.fixture
    def backend_config(self: Any, tmp_path: Any) -> Any:
        return make_config(tmp_path)

    return type(
        f"TestConformance_{name.replace('-', '_')}",
        (BackendConformance,),
        {"backend": name, "backend_config": backend_config, **attrs},
    )


for _name in INSTALLED:
    globals()[f"TestConformance_{_name.replace('-', '_')}"] = _make(_name)


def test_some_backend_is_installed() -> None:
    """The session installs the local, docker, podman and example backends: an empty run must fail, not pass."""
    assert {"local", "docker", "podman", "subprocess-example"} <= set(available_backends())
