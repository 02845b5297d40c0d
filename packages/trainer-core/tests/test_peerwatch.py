"""The job-side watcher (kubeflow_trainer.peerwatch) with real processes: a failed or silent step stops the
others, initializers gate the trainer, success and failure leave their markers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from kubeflow_trainer import peerwatch
from kubeflow_trainer.jobside import peerwatch_source


def shipped(tmp: Path) -> str:
    """The watcher as the backends ship it: a lone file (as in the job's workspace)."""
    path = tmp / "ship" / "peerwatch.py"
    if not path.exists():
        path.parent.mkdir()
        path.write_text(peerwatch_source())
    return str(path)


def start(tmp: Path, step: str, command: list[str], wait_for: str = "") -> subprocess.Popen[bytes]:
    args = [sys.executable, shipped(tmp), step, str(tmp / "watch"), str(tmp / "steps"), wait_for, "--", *command]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_failed_step_stops_its_peers(tmp_path: Path) -> None:
    sleeper = start(tmp_path, "node-0", SLEEP)
    time.sleep(0.5)
    began = time.monotonic()
    failer = start(tmp_path, "node-1", [sys.executable, "-c", "raise SystemExit(5)"])
    assert failer.wait(30) == 5
    assert sleeper.wait(30) == peerwatch.PEER_EXIT
    print(f"peer stopped {time.monotonic() - began:.2f}s after the failing step started")
    out = sleeper.stdout.read().decode() if sleeper.stdout else ""
    assert "stopping node-0: node-1 failed with exit code 5" in out
    assert (tmp_path / "watch" / "node-1.failed").read_text() == "5"
    assert not (tmp_path / "watch" / "node-0.failed").exists()  # a stopped step is not a root cause


def test_a_silent_step_counts_as_killed(tmp_path: Path) -> None:
    (tmp_path / "watch").mkdir()
    alive = tmp_path / "watch" / "node-1.alive"
    alive.touch()
    old = time.time() - peerwatch.STALE - 1
    os.utime(alive, (old, old))  # a heartbeat that stopped: the container was SIGKILLed
    sleeper = start(tmp_path, "node-0", SLEEP)
    assert sleeper.wait(30) == peerwatch.PEER_EXIT
    assert "node-1 stopped responding" in (sleeper.stdout.read().decode() if sleeper.stdout else "")


def test_success_writes_done_and_a_finished_peer_is_not_silent(tmp_path: Path) -> None:
    (tmp_path / "watch").mkdir()
    for name in ("node-1.alive", "node-1.done"):
        (tmp_path / "watch" / name).touch()
        os.utime(tmp_path / "watch" / name, (0, 0))
    ok = start(tmp_path, "node-0", [sys.executable, "-c", "import time; time.sleep(1)"])
    assert ok.wait(30) == 0
    assert (tmp_path / "watch" / "node-0.done").exists()


def test_initializers_gate_the_command(tmp_path: Path) -> None:
    (tmp_path / "steps").mkdir()
    marker = tmp_path / "ran"
    gated = start(tmp_path, "node-0", [sys.executable, "-c", f"open({str(marker)!r}, 'w')"], "dataset-initializer")
    time.sleep(1)
    assert gated.poll() is None and not marker.exists()
    (tmp_path / "steps" / "dataset-initializer.ok").touch()
    assert gated.wait(30) == 0 and marker.exists()

    failed_gate = start(tmp_path, "node-1", [sys.executable, "-c", f"open({str(marker)!r}, 'w')"], "model-initializer")
    (tmp_path / "steps" / "model-initializer.failed").touch()
    marker.unlink()
    assert failed_gate.wait(30) == peerwatch.GATE_EXIT and not marker.exists()


def test_sigterm_stops_the_command_without_blaming_anyone(tmp_path: Path) -> None:
    proc = start(tmp_path, "node-0", SLEEP)
    time.sleep(1)
    proc.terminate()
    assert proc.wait(30) == 143
    assert not (tmp_path / "watch" / "node-0.failed").exists()


def test_bad_usage_says_how_to_call_it(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, shipped(tmp_path), "node-0"], check=False, capture_output=True, text=True)
    assert out.returncode == 2 and "usage: peerwatch.py" in out.stdout
