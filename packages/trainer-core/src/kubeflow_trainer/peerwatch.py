"""Runs one step of a job (a node or an initializer) so that the job polices itself with no client running.
Standard library only; shipped as a file into the job's shared workspace (never a shell string).

Usage in a container: ``python3 /workspace/.kft/peerwatch.py <step> <watch-dir> <status-dir> <wait-for> -- argv...``

Every step of the job runs under this watcher, and they talk only through files in ``<watch-dir>`` (on the
job's shared volume):

- ``<step>.alive``: touched every :data:`HEARTBEAT` seconds while the step runs;
- ``<step>.done``: the step's command exited with code 0;
- ``<step>.failed``: the step's command exited non-zero (the file holds the exit code).

A step whose command fails writes ``.failed``; every other step's watcher sees it within a fraction of a second,
stops its own command (SIGTERM to its process group, SIGKILL after :data:`GRACE` seconds) and exits with
:data:`PEER_EXIT`. A step that was killed outright (its container SIGKILLed, OOM-killed) writes nothing, but its
heartbeat stops: a ``.alive`` older than :data:`STALE` seconds without ``.done``/``.failed`` counts as a failure.

``<wait-for>`` (space-separated initializer steps, may be empty) gates the command: it starts only once each
named step wrote ``<status-dir>/<step>.ok``; when one wrote ``.failed`` or died, the watcher exits with
:data:`GATE_EXIT` without starting it.
"""

import os
import signal
import subprocess
import sys
import threading
import time

HEARTBEAT = 1.0
"""Seconds between two touches of a step's ``.alive`` file."""
STALE = 6.0
"""Seconds after which a silent heartbeat means the step was killed (generous: the machine may be loaded)."""
POLL = 0.2
"""Seconds between two looks at the peers' files."""
GRACE = 3.0
"""Seconds a stopped command has between SIGTERM and SIGKILL."""
GATE_EXIT = 78
"""Exit code of a step whose command was not started because an initializer failed."""
PEER_EXIT = 79
"""Exit code of a step whose command was stopped because another step of the job failed."""


def _log(message: str) -> None:
    print(f"[kubeflow-trainer] {message}", flush=True)


def _exists(path: str) -> bool:
    return os.path.exists(path)


def failed_peer(watch_dir: str, me: str) -> "tuple[str, str] | None":
    """(step, why) of another step of the job that failed or stopped responding, else None."""
    try:
        names = os.listdir(watch_dir)
    except OSError:
        return None
    now = time.time()
    for name in sorted(names):
        step, _, kind = name.rpartition(".")
        if step == me or not step:
            continue
        path = os.path.join(watch_dir, name)
        if kind == "failed":
            try:
                with open(path) as fh:
                    code = fh.read().strip()
            except OSError:
                code = "?"
            return step, f"{step} failed with exit code {code}"
        if kind == "alive":
            base = os.path.join(watch_dir, step)
            try:
                age = now - os.stat(path).st_mtime
            except OSError:
                continue
            if age > STALE and not _exists(base + ".done") and not _exists(base + ".failed"):
                return step, f"{step} stopped responding for {age:.0f}s (killed?)"
    return None


def _heartbeat(path: str, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with open(path, "a"):
                pass
            os.utime(path)
        except OSError:
            pass
        stop.wait(HEARTBEAT)


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _gate(watch_dir: str, status_dir: str, me: str, wait_for: "list[str]", stopping: threading.Event) -> "str | None":
    """Wait until every step of ``wait_for`` succeeded: None, or why the command must not start."""
    for step in wait_for:
        while not _exists(os.path.join(status_dir, f"{step}.ok")):
            if _exists(os.path.join(status_dir, f"{step}.failed")):
                return f"{step} failed (see its logs)"
            peer = failed_peer(watch_dir, me)
            if peer is not None:
                return peer[1]
            if stopping.is_set():
                return "the step was stopped"
            time.sleep(POLL / 2)
    return None


def _stop(proc: "subprocess.Popen[bytes]") -> int:
    """SIGTERM the command's process group, SIGKILL after GRACE; its exit code."""
    for sig, wait in ((signal.SIGTERM, GRACE), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(proc.pid, sig)
        except OSError:
            pass
        try:
            return proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def run(step: str, watch_dir: str, status_dir: str, wait_for: "list[str]", argv: "list[str]") -> int:
    """Run ``argv`` as ``step`` under the watch protocol (module docstring); the exit code to exit with."""
    os.makedirs(watch_dir, exist_ok=True)
    stopping = threading.Event()
    signalled: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        signalled.append(signum)
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    beat = threading.Event()
    threading.Thread(target=_heartbeat, args=(os.path.join(watch_dir, f"{step}.alive"), beat), daemon=True).start()
    base = os.path.join(watch_dir, step)
    try:
        why = _gate(watch_dir, status_dir, step, wait_for, stopping)
        if why is not None:
            _log(f"the trainer was not started: {why}")
            _write(base + ".stopped", why)
            return 143 if signalled else GATE_EXIT
        proc = subprocess.Popen(argv, start_new_session=True)
        while True:
            try:
                code = proc.wait(POLL)
                break
            except subprocess.TimeoutExpired:
                pass
            if stopping.is_set():
                code = _stop(proc)
                return 143
            peer = failed_peer(watch_dir, step)
            if peer is not None:
                _log(f"stopping {step}: {peer[1]}")
                _write(base + ".stopped", peer[1])
                _stop(proc)
                return PEER_EXIT
        code = code if code >= 0 else 128 - code
        if code == 0:
            _write(base + ".done", "0")
        elif not stopping.is_set():
            _write(base + ".failed", str(code))
        return code
    finally:
        beat.set()


def main(args: "list[str]") -> int:
    """Parse ``<step> <watch-dir> <status-dir> <wait-for> -- argv...`` and run."""
    if len(args) < 6 or args[4] != "--":
        _log("usage: peerwatch.py <step> <watch-dir> <status-dir> <wait-for> -- argv...")
        return 2
    step, watch_dir, status_dir, wait_for = args[:4]
    return run(step, watch_dir, status_dir, wait_for.split(), args[5:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
