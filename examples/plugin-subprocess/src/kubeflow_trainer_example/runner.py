"""Runs in the detached child: loads the job's ``request.json``, starts one process per node, and records
each node's exit code. When a node fails, the other nodes are stopped at once (the job polices itself; no
client has to be running).

Files in the job directory: ``node-<rank>.log`` (the node's output), ``node-<rank>.exit`` (its exit code,
written atomically when it ends), ``node-<rank>.times`` (when the log grew: :mod:`kubeflow_trainer.logclock`)
and ``stopped`` (why the remaining nodes were stopped).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from kubeflow_trainer.logclock import LogClock
from kubeflow_trainer_example.request import SubprocessRequest


def _record(job_dir: str, step: str, code: int) -> None:
    tmp = os.path.join(job_dir, f"{step}.exit.tmp")
    with open(tmp, "w") as fh:
        fh.write(str(code))
    os.replace(tmp, os.path.join(job_dir, f"{step}.exit"))


def main(job_dir: str) -> int:
    with open(os.path.join(job_dir, "request.json"), encoding="utf-8") as fh:
        request = SubprocessRequest.model_validate_json(fh.read())
    running: dict[str, subprocess.Popen[bytes]] = {}
    for node in request.nodes:
        with open(os.path.join(job_dir, f"{node.step}.log"), "ab", buffering=0) as log:
            running[node.step] = subprocess.Popen(
                node.argv,
                cwd=job_dir,
                env={**os.environ, **node.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
    clock = LogClock([os.path.join(job_dir, f"{node.step}.log") for node in request.nodes]).start()
    try:
        return _wait(job_dir, request, running)
    finally:
        clock.stop()


def _wait(job_dir: str, request: SubprocessRequest, running: dict[str, subprocess.Popen[bytes]]) -> int:
    worst = 0
    stop_at: float | None = None
    while running:
        for step, proc in list(running.items()):
            code = proc.poll()
            if code is None:
                continue
            del running[step]
            _record(job_dir, step, code)
            if code != 0 and stop_at is None:
                worst = code
                with open(os.path.join(job_dir, "stopped"), "w") as fh:
                    fh.write(f"{step} failed with exit code {code}")
                for other in running.values():
                    other.send_signal(signal.SIGTERM)
                stop_at = time.monotonic() + request.stop_grace_seconds
        if stop_at is not None and time.monotonic() > stop_at:
            for other in running.values():
                other.kill()
        time.sleep(0.05)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
