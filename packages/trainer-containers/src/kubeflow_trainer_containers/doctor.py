"""``kubeflow-trainer doctor`` checks shared by the container engines: the engine answers (and its version),
and the image jobs run in is present."""

from __future__ import annotations

from typing import Any

from kubeflow_trainer.doctor import Check, fail, ok, warn
from kubeflow_trainer_containers.config import IMAGE_ENV, ContainerBackendConfig
from kubeflow_trainer_containers.engine import ContainerEngine


def engine_checks(display: str, engine: ContainerEngine, config: ContainerBackendConfig) -> list[Check]:
    """The engine reachable with its version, then the trainer image present (or pullable)."""
    checks: list[Check] = []
    try:
        engine.ping()
    except Exception as exc:
        checks.append(fail(f"{display} engine reachable", str(exc).split(". ")[0], _start_fix(display, exc)))
        return checks
    checks.append(ok(f"{display} engine reachable", _version(engine)))
    image = config.image or _runtime_image(config)
    if not image:
        return checks
    name = f"trainer image {image}"
    try:
        present = engine.image_exists(image)
    except Exception as exc:
        checks.append(fail(name, f"{type(exc).__name__}: {exc}", f"check the {display} engine"))
        return checks
    if present:
        checks.append(ok(name, "present"))
    elif config.pull_policy == "Never":
        checks.append(
            fail(
                name,
                "not present and pull_policy is Never",
                f"build or load it into {display} ({display.lower()} pull {image}), or set --config image=... "
                f"/ ${IMAGE_ENV}",
            )
        )
    else:
        checks.append(
            warn(name, "not present: the first job pulls it", f"{display.lower()} pull {image} ahead of time")
        )
    return checks


def _start_fix(display: str, exc: Exception) -> str:
    text = str(exc)
    start = text.find("Start the engine")
    if start < 0:
        start = text.find("Start ")
    return text[start:] if start >= 0 else f"start the {display} engine or point the backend at a running one"


def _version(engine: Any) -> str:
    try:
        info = engine.client.version()
    except Exception:
        return "version unknown"
    version = info.get("Version", "?")
    api = info.get("ApiVersion")
    return f"version {version}" + (f" (API {api})" if api else "")


def _runtime_image(config: ContainerBackendConfig) -> str:
    try:
        runtimes = config.runtime_source.runtimes()
    except Exception:
        return ""
    for runtime in runtimes:
        if runtime.name == "torch-distributed":
            return runtime.trainer.image
    return runtimes[0].trainer.image if runtimes else ""
