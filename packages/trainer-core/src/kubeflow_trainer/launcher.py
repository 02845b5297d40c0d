"""Runs inside each node container before the trainer: installs ``packages_to_install``, then execs the
node's command. Standard library only; shipped as a file into the job's workspace (never a shell string).

Usage in the container: ``python3 /workspace/.kft/launch.py <argv...>`` with ``KFT_PACKAGES`` (JSON list of
requirements) and ``KFT_PIP_ARGS`` (JSON list of pip flags, e.g. the job's index URLs).
"""

import json
import os
import subprocess
import sys

PIP_FAILED = 97


def main(argv: "list[str]") -> int:
    packages = json.loads(os.environ.get("KFT_PACKAGES") or "[]")
    if packages:
        pip_args = json.loads(os.environ.get("KFT_PIP_ARGS") or "[]")
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pip_args, *packages]
        print("[kubeflow-trainer] installing " + " ".join(packages), flush=True)
        if subprocess.call(cmd) != 0:
            print("[kubeflow-trainer] pip install failed; check packages_to_install / pip_index_urls", flush=True)
            return PIP_FAILED
    if not argv:
        print("[kubeflow-trainer] no command to run", flush=True)
        return 2
    os.execvp(argv[0], argv)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
