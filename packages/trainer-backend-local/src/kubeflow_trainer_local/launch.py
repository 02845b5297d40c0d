"""How the supervisor starts a job's processes and waits for them: the swappable layer between the supervisor
(statuses, events, stopping the job) and the processes of one node.

- :class:`ProcessStarter` starts a process as the request says (``subprocess`` in a session of its own):
  ``torchrun`` per node, the initializer runners.
- :class:`~kubeflow_trainer_local.hotstart.HotStarter` asks the environment's zygote
  (:mod:`kubeflow_trainer_local.zygote`) to fork the node instead (see :mod:`kubeflow_trainer_local.hotstart`).

Both return a :class:`Handle`: the node's pid (a session leader: ``killpg(pid)`` stops the whole node), a
file descriptor that becomes readable when the process exits, and its exit code (negative: the signal).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from typing import IO, Protocol

from kubeflow_trainer_local.request import Process


class Handle(Protocol):
    """A started process, as the supervisor waits for it."""

    pid: int

    def fileno(self) -> int:
        """Readable when the process has exited."""

    def poll(self) -> int | None:
        """Its exit code once it exited (negative: killed by that signal), else None."""

    def wait(self) -> int:
        """Block until it exits; its exit code."""


class PopenHandle:
    """A child of the supervisor (``subprocess``), waited for through a pidfd."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._fd = os.pidfd_open(proc.pid)
        self.code: int | None = None

    def fileno(self) -> int:
        return self._fd

    def poll(self) -> int | None:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._done(os.waitstatus_to_exitcode(status))
        return self.code

    def wait(self) -> int:
        if self.code is None:
            _, status = os.waitpid(self.pid, 0)
            self._done(os.waitstatus_to_exitcode(status))
        assert self.code is not None
        return self.code

    def _done(self, code: int) -> None:
        self.code = self.proc.returncode = code
        os.close(self._fd)


class ZygoteHandle:
    """A node forked by a zygote: its exit code arrives on the request's connection. Should the zygote go
    away first, the node is watched through a pidfd (its code is then unknown: reported as 1)."""

    def __init__(self, conn: socket.socket, pid: int) -> None:
        self.conn = conn
        self.pid = pid
        self.code: int | None = None
        self._buf = b""
        self._pidfd: int | None = None

    def fileno(self) -> int:
        return self._pidfd if self._pidfd is not None else self.conn.fileno()

    def _read(self, block: bool) -> None:
        if self._pidfd is not None:
            if block:
                while not _pid_gone(self.pid):
                    time.sleep(0.05)
            if _pid_gone(self.pid):
                self._done(1)
            return
        self.conn.setblocking(block)
        while b"\n" not in self._buf:
            try:
                chunk = self.conn.recv(4096)
            except BlockingIOError:
                return
            if not chunk:  # the zygote exited without reporting: watch the node itself
                self.conn.close()
                try:
                    self._pidfd = os.pidfd_open(self.pid)
                except ProcessLookupError:
                    self._done(1)
                    return
                self._read(block)
                return
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        self._done(int(json.loads(line)["exit"]))
        self.conn.close()

    def poll(self) -> int | None:
        if self.code is None:
            self._read(block=False)
        return self.code

    def wait(self) -> int:
        while self.code is None:
            self._read(block=True)
        return self.code

    def _done(self, code: int) -> None:
        self.code = code
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def _pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal the kernel sends a process when the thread that started it ends."""


class ProcessStarter:
    """Starts a process as its request says: ``argv`` in ``cwd``, a session of its own, optional CPUs.

    The process gets SIGTERM from the kernel when the starting process (the job's supervisor) dies, so a
    SIGKILLed supervisor leaves no node running, with no client needed (torchrun's agent stops its workers on
    SIGTERM). Call :meth:`start` from the thread that lives as long as the supervisor (its main thread):
    the signal follows the thread that forked."""

    description = "torchrun"

    def __init__(self) -> None:
        import ctypes

        self._libc = ctypes.CDLL(None, use_errno=True)  # loaded here: nothing is imported after the fork

    def start(self, process: Process, env: dict[str, str], log: IO[bytes], cpus: list[int] | None = None) -> Handle:
        """Start ``process`` with ``env``, stdout and stderr to ``log``."""
        parent, prctl = os.getpid(), self._libc.prctl

        def in_child() -> None:  # between fork and exec: async-signal-safe calls only
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
            if os.getppid() != parent:  # the supervisor died before the line above: nothing would signal us
                os._exit(143)
            if cpus:
                os.sched_setaffinity(0, cpus)

        proc = subprocess.Popen(
            process.argv,
            cwd=process.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=in_child,  # noqa: PLW1509  # the supervisor starts its nodes from its main thread
        )
        return PopenHandle(proc)
