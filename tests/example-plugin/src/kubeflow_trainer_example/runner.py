"""Runs in the detached child: executes the job's script, then records its exit code."""

from __future__ import annotations

import os
import subprocess
import sys


def main(job_dir: str) -> int:
    with open(os.path.join(job_dir, "output.log"), "ab", buffering=0) as log:
        code = subprocess.call([sys.executable, "-u", "train.py"], cwd=job_dir, stdout=log, stderr=log)
    tmp = os.path.join(job_dir, "exit_code.tmp")
    with open(tmp, "w") as fh:
        fh.write(str(code))
    os.replace(tmp, os.path.join(job_dir, "exit_code"))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
