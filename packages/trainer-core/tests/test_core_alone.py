"""Core imports fast and pulls in no backend or heavy SDK."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_backend_or_sdk():
    code = (
        "import sys, kubeflow_trainer\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('docker', 'podman', 'kubernetes', 'kubeflow_trainer_local', 'kubeflow_trainer_docker', "
        "'kubeflow_trainer_podman', 'kubeflow_trainer_k8s', 'pytest'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
