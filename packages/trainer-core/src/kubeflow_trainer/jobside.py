"""What the SDK ships into every job so that the SDK's in-job API works without trainer-core installed there.

A training function may ``from kubeflow_trainer import update_trainjob_status`` (or ``get_tpu_num_nodes``) as
upstream's does ``from kubeflow.trainer import ...``; upstream needs the ``kubeflow`` package in the job's image.
The local and container backends place a small ``kubeflow_trainer`` package next to the job's ``train.py``
(so it is found through the script's directory, the first entry of ``sys.path``). It holds only the in-job API
(:mod:`kubeflow_trainer.trainjob_status`, :mod:`kubeflow_trainer.tpu`, standard library only). When the job's
environment has trainer-core installed, the stand-in loads that installation instead, so nothing is shadowed.
"""

from __future__ import annotations

from importlib import resources

PACKAGE_DIR = "kubeflow_trainer"
"""Directory of the stand-in package, relative to the directory of the job's ``train.py``."""

SHIPPED_MODULES = ("trainjob_status.py", "tpu.py")

STAND_IN = '''"""Stand-in for trainer-core inside a job (shipped by the Kubeflow Trainer SDK).

It provides the in-job API (update_trainjob_status, get_tpu_num_nodes). If trainer-core is installed in
the job's environment, that installation is loaded instead of this package.
"""

import importlib.machinery as _machinery
import importlib.util as _util
import os as _os
import sys as _sys

_here = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
_rest = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) != _here]
_spec = _machinery.PathFinder.find_spec(__name__, _rest)
if _spec is not None and _spec.loader is not None:
    _real = _util.module_from_spec(_spec)
    _sys.modules[__name__] = _real
    _spec.loader.exec_module(_real)
else:
    from kubeflow_trainer.tpu import get_tpu_num_nodes
    from kubeflow_trainer.trainjob_status import update_trainjob_status

    __all__ = ["get_tpu_num_nodes", "update_trainjob_status"]
'''


def stand_in_files(script_dir: str = "") -> dict[str, str]:
    """The stand-in package's files (path relative to the workspace -> content), beside ``script_dir``."""
    prefix = f"{script_dir.strip('/')}/" if script_dir.strip("/") else ""
    files = {f"{prefix}{PACKAGE_DIR}/__init__.py": STAND_IN}
    package = resources.files("kubeflow_trainer")
    for module in SHIPPED_MODULES:
        files[f"{prefix}{PACKAGE_DIR}/{module}"] = package.joinpath(module).read_text()
    return files


def launcher_source() -> str:
    """The job-side launcher (:mod:`kubeflow_trainer.launcher`, standard library only): installs
    ``packages_to_install``, then execs the node's command. The container and Kubernetes backends ship it
    into the job as a file."""
    return resources.files("kubeflow_trainer").joinpath("launcher.py").read_text()


def peerwatch_source() -> str:
    """The job-side watcher (:mod:`kubeflow_trainer.peerwatch`, standard library only) that makes a job's
    steps stop each other when one fails; the container backends run every step under it."""
    return resources.files("kubeflow_trainer").joinpath("peerwatch.py").read_text()
