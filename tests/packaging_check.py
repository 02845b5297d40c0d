"""Run inside a venv built from the wheels by the `packaging` nox session.

`core_alone`: only trainer-core is installed: import works, loads no backend or SDK, and asking for
docker fails with an error that lists the installed backends and the pip command.
It holds no container code (trainer-containers is absent) and the container names say how to install it.
`docker_extra`: trainer-core[docker]: the Docker backend and trainer-containers, which it runs on.
`all_extras`: trainer-core[all]: every extra resolves to an installed distribution and every backend
entry point loads.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata


def core_alone() -> None:
    import kubeflow_trainer
    from kubeflow_trainer import BackendNotFoundError, TrainerClient

    heavy = [m for m in sys.modules if m.split(".")[0] in ("docker", "podman", "kubernetes", "pytest")]
    assert heavy == [], heavy
    assert kubeflow_trainer.available_backends() == []
    try:
        TrainerClient(backend="docker")
    except BackendNotFoundError as exc:
        text = str(exc)
        assert "installed backends: none" in text and 'pip install "trainer-core[docker]"' in text, text
        print("core alone OK:", text)
    else:
        raise AssertionError("TrainerClient(backend='docker') did not fail without the docker backend")
    assert importlib.util.find_spec("kubeflow_trainer_containers") is None, "trainer-core installed container code"
    assert importlib.util.find_spec("kubeflow_trainer.containers") is None, "trainer-core still has containers/"
    from kubeflow_trainer.errors import BackendNotInstalledError

    try:
        kubeflow_trainer.ContainerBackendConfig  # noqa: B018
    except BackendNotInstalledError as exc:
        hint = str(exc)
    else:
        raise AssertionError("ContainerBackendConfig resolved without trainer-containers")
    assert "pip install 'trainer-core[docker]'" in hint, hint
    print("core alone has no container code:", hint)
    _cli_installed()


def _cli_installed() -> None:
    """The kubeflow-trainer console script comes with trainer-core alone, with its dependencies."""
    import os
    import subprocess

    script = os.path.join(os.path.dirname(sys.executable), "kubeflow-trainer")
    helped = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert "Exit codes" in helped, helped
    listed = subprocess.run([script, "backends"], capture_output=True, text=True, check=True).stdout
    assert "no backend installed" in listed, listed
    print("kubeflow-trainer CLI OK")


def docker_extra() -> None:
    import kubeflow_trainer

    assert importlib.util.find_spec("kubeflow_trainer_containers") is not None, "trainer-core[docker] lacks it"
    metadata.version("trainer-containers")
    assert kubeflow_trainer.ContainerBackendConfig.__module__ == "kubeflow_trainer_containers.config"
    from kubeflow_trainer.backends.container.types import TrainingRuntimeSource

    assert TrainingRuntimeSource.__module__ == "kubeflow_trainer_containers.config"
    names = kubeflow_trainer.available_backends()
    assert names == ["docker"], names
    print("docker extra OK: trainer-containers", metadata.version("trainer-containers"), "backends:", names)


def all_extras() -> None:
    requires = metadata.requires("trainer-core") or []
    extras = {"k8s", "local", "docker", "podman", "all", "testing"}
    for extra in sorted(extras):
        reqs = [r.split(";")[0].strip() for r in requires if f'extra == "{extra}"' in r.replace("'", '"')]
        assert reqs, f"extra {extra} declares nothing"
        for req in reqs:
            if extra == "testing":
                continue
            metadata.version(req)  # raises PackageNotFoundError when the extra did not install it
    eps = metadata.entry_points(group="kubeflow_trainer.backends")
    for ep in eps:
        ep.load()
    from kubeflow_trainer import available_backends

    names = available_backends()
    assert "local" in names, names
    print("all extras OK; entry points:", sorted(ep.name for ep in eps), "backends:", names)


if __name__ == "__main__":
    {"core_alone": core_alone, "docker_extra": docker_extra, "all_extras": all_extras}[sys.argv[1]]()
