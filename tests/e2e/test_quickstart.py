"""The README's quick start (examples/quickstart.py) as a new user runs it: a first run with an empty job
environment cache, output not a terminal (plain progress lines). The progress display must show how far the
environment is (package counts) before the job's first log line, and the job must run on both ranks.

The environment cache and the SDK's state start empty (a fresh machine's); uv's download cache is shared with
the other tests so torch is not downloaded again (what is measured is the preparation the user watches: the
resolve, install and bytecode compilation of torch into a new environment)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COUNTS = re.compile(r"\d+/\d+ packages")


def test_quickstart_shows_package_counts_before_its_first_log_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KUBEFLOW_TRAINER_BACKEND": "local",
        "KUBEFLOW_TRAINER_LOCAL_CACHE_DIR": str(tmp_path / "envs"),
        "KUBEFLOW_TRAINER_LOCAL_STATE_DIR": str(tmp_path / "state"),
        "KUBEFLOW_TRAINER_PROGRESS": "plain",
        "PYTHONUNBUFFERED": "1",
    }
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, in the order the user sees it
        text=True,
        timeout=1200,
        check=False,
    )
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout[-4000:]
    first_log = next(i for i, line in enumerate(lines) if line.startswith("[node-"))
    progress = [line for line in lines[:first_log] if re.match(r"^\[[a-z0-9-]+\] ", line)]
    assert any(COUNTS.search(line) for line in progress), lines[:first_log]
    assert any("rank 0/2" in line for line in lines) and any("rank 1/2" in line for line in lines), lines
    print("\n".join(progress))
