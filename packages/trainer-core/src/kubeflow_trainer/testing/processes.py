"""What the conformance kit uses to watch a job's steps without asking the backend: the processes of a step on
this machine (from ``/proc``), a way to SIGKILL them, and an HTTP server that never finishes a download.

A step's processes are found by the environment every backend gives them: ``KUBEFLOW_TRAINER_JOB_NAME`` and
``KUBEFLOW_TRAINER_NODE_RANK`` (nodes) or ``KUBEFLOW_TRAINER_STEP`` (initializers). Processes in containers of a
local engine are processes of this machine too. A backend whose jobs run elsewhere overrides the kit's
``step_pids`` and ``kill_step`` hooks.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def _environ(pid: str) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as fh:
        raw = fh.read()
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def _zombie(pid: str) -> bool:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")


def step_pids(job: str, step: str) -> list[int]:
    """Live processes of ``step`` of ``job`` on this machine (empty when ``/proc`` is not there)."""
    found = []
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        try:
            env = _environ(pid)
            if env.get("KUBEFLOW_TRAINER_JOB_NAME") != job:
                continue
            rank = env.get("KUBEFLOW_TRAINER_NODE_RANK")
            own = env.get("KUBEFLOW_TRAINER_STEP") or (f"node-{rank}" if rank is not None else None)
            if own == step and not _zombie(pid):
                found.append(int(pid))
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return sorted(found)


def kill(pids: list[int]) -> None:
    """SIGKILL every process of ``pids`` that still exists."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def host_address() -> str:
    """This machine's primary IPv4 address: local processes and containers on a bridge network reach it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent, only the route is looked up
        return str(sock.getsockname()[0])


@contextmanager
def endless_download() -> Iterator[int]:
    """An HTTP server (all interfaces; yields its port) whose every answer announces 100 MB and sends one byte a
    second: a download from it runs until it is stopped."""
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def trickle(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100000000\r\n\r\n")
                while not stop.wait(1.0):
                    conn.sendall(b"x")
            except OSError:
                pass

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        server.close()


def jobs_with_processes(jobs: set[str]) -> set[str]:
    """Which of ``jobs`` have a live process on this machine (any step), by their processes' environment."""
    found: set[str] = set()
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            job = _environ(pid).get("KUBEFLOW_TRAINER_JOB_NAME")
            if job in jobs and not _zombie(pid):
                found.add(job)
        except (OSError, IndexError):
            continue
    return found


class ConcurrencySampler:
    """Samples, every ``interval`` seconds in a thread, how many of ``jobs`` have live processes at once
    (``counter`` may replace the ``/proc`` count, e.g. with a container engine's). ``peak`` is the most seen."""

    def __init__(self, jobs: set[str], interval: float = 0.1, counter: Callable[[set[str]], set[str]] | None = None):
        self.jobs = jobs
        self.interval = interval
        self.counter = counter or jobs_with_processes
        self.peak = 0
        self.samples = 0
        self.first_seen: dict[str, float] = {}
        """When each job was first seen running (monotonic seconds)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            running = self.counter(self.jobs)
            self.peak = max(self.peak, len(running))
            now = time.monotonic()
            for job in running:
                self.first_seen.setdefault(job, now)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> ConcurrencySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
