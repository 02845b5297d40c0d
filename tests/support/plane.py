"""The Kubernetes test control plane (scripts/k8s/) for suites that start their own: build (cached), start,
check every component, yield its status, stop. Callers hold the plane lock (:data:`K8S_LOCK`: fixed ports,
one plane on the machine at a time)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

K8S = Path(__file__).resolve().parents[2] / "scripts" / "k8s"
K8S_LOCK = "/tmp/kft-k8s-plane.lock"
"""The lock the suites that start the plane take."""


@contextmanager
def started_plane(run_dir: Path) -> Iterator[dict[str, object]]:
    """The plane started in ``run_dir``, its ``components.json`` status yielded; a component that is not
    ``ok`` fails the test with the reason. Stopped (down.sh) on exit, whatever happened."""
    env = dict(os.environ, KFT_K8S_RUN_DIR=str(run_dir))
    subprocess.run(["bash", str(K8S / "build.sh")], env=env, check=False, capture_output=True)
    up = subprocess.run(["bash", str(K8S / "up.sh")], env=env, check=False, capture_output=True, text=True)
    status_file = run_dir / "components.json"
    try:
        if not status_file.exists():
            pytest.fail(f"the test control plane did not start: {up.stdout[-2000:]}{up.stderr[-2000:]}")
        status = json.loads(status_file.read_text())
        broken = {c: why for c, why in status["components"].items() if why != "ok"}
        if broken:
            pytest.fail(f"test control plane components not available: {broken}", pytrace=False)
        yield status
    finally:
        subprocess.run(["bash", str(K8S / "down.sh")], env=env, check=False, capture_output=True)


@contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (the same lock `flock <path> <cmd>` takes). When a process this
    one runs under already holds it (`flock /tmp/kft-engines.lock nox -s compat`), that lock covers this run:
    waiting for it would deadlock this run and every other user of the lock."""
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if _held_by_an_ancestor(path):
                yield
                return
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _held_by_an_ancestor(path: str) -> bool:
    """Whether the flock on ``path`` is held by one of this process's ancestors (from /proc/locks)."""
    inode = os.stat(path).st_ino
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            holders.add(int(fields[4]))
    pid = os.getppid()
    while pid > 1:
        if pid in holders:
            return True
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False
