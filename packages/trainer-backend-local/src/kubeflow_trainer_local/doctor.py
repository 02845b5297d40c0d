"""``kubeflow-trainer doctor -b local``: the interpreter job environments are built from, the installer, and
the state and cache directories."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from kubeflow_trainer.doctor import Check, fail, ok, warn
from kubeflow_trainer_local.config import LocalProcessBackendConfig


def checks(config: LocalProcessBackendConfig) -> list[Check]:
    """Python, uv/pip, and the writable directories the backend uses."""
    return [_python(config), _installer(config), *(_writable(label, path) for label, path in _dirs(config))]


def _python(config: LocalProcessBackendConfig) -> Check:
    python = config.python or sys.executable
    name = "Python for job environments"
    try:
        out = subprocess.run(
            [python, "-c", "import sys, venv; print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return fail(
            name,
            f"{python}: {exc}",
            "point --config python=/path/to/python3 at an interpreter with the venv module",
        )
    major, minor = (int(p) for p in out.split(".")[:2])
    if (major, minor) < (3, 9):
        return fail(name, f"{python} is Python {out}", "use Python 3.9 or later: --config python=...")
    return ok(name, f"{python} (Python {out})")


def _installer(config: LocalProcessBackendConfig) -> Check:
    from kubeflow_trainer_local.envcache import uv_binary

    uv = uv_binary()
    name = f"package installer ({config.installer})"
    if config.installer == "pip":
        return ok(name, "pip")
    if uv:
        version = subprocess.run(
            [uv, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
        return ok(name, f"{version} at {uv}")
    if config.installer == "uv":
        return fail(name, "installer='uv' but uv is not installed", "pip install uv (or --config installer=pip)")
    return warn(name, "uv not installed: environments are built with pip (slower)", "pip install uv")


def _dirs(config: LocalProcessBackendConfig) -> list[tuple[str, str]]:
    return [("job state", config.state_dir), ("environment cache", config.cache_dir)]


def _writable(label: str, path: str) -> Check:
    name = f"{label} directory writable"
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return fail(name, f"{path}: {exc}", f"make {path} writable, or choose another with --config")
    return ok(name, path)
