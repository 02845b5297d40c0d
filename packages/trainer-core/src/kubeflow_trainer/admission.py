"""Admission under load for backends that run jobs on this machine: a queue of jobs that wait, in submission
order, until fewer than a limit of jobs run. Files and ``flock`` locks only: no daemon, robust to killed
processes (the kernel drops a dead process's locks).

In a queue directory:

- ``queue/<seq>-<job>``: a waiting job's ticket; ``<seq>`` (nanoseconds at submission) orders the queue. The
  process that waits for the job holds an exclusive lock on it: a ticket nobody holds belongs to a process that
  died, and is skipped (and removed) by the others.
- ``running/<job>``: a job admitted and running; locked by the process that runs it, when the backend has one
  (the local supervisor). Backends whose jobs run without such a process count running jobs their own way.
- ``lock``: taken around each admission decision, so that two jobs never take the last free place together.

A waiting process calls :func:`wait_for_turn`; only the head of the queue counts running jobs.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

POLL = 0.2
"""Seconds between two looks at the queue."""


def default_limit() -> int:
    """Jobs that may run at once when the backend's config sets no limit: two per CPU, at least eight."""
    return max(8, 2 * (os.cpu_count() or 1))


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class Ticket:
    """A waiting job's place in the queue (its lock is held for as long as the object's file is open)."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def release(self) -> None:
        """Leave the queue (admitted, or given up)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)


class AdmissionQueue:
    """The queue in ``directory`` (created on first use)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.queue_dir = os.path.join(directory, "queue")
        self.running_dir = os.path.join(directory, "running")

    def _dirs(self) -> None:
        os.makedirs(self.queue_dir, exist_ok=True)
        os.makedirs(self.running_dir, exist_ok=True)
        os.makedirs(os.path.join(self.directory, "tmp"), exist_ok=True)

    def _locked_file(self, path: str) -> int:
        """Create ``path`` already locked: made and locked under a temporary name, then renamed into place, so
        that no other process ever sees it unlocked (and takes it for a dead one's)."""
        self._dirs()
        tmp = os.path.join(self.directory, "tmp", f"{os.getpid()}-{time.time_ns()}")
        fd = os.open(tmp, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(tmp, path)
        return fd

    def enqueue(self, job: str) -> Ticket:
        """A ticket for ``job`` at the end of the queue, locked by this process (and the children it hands the
        file descriptor to)."""
        path = os.path.join(self.queue_dir, f"{time.time_ns():020d}-{job}")
        return Ticket(path, self._locked_file(path))

    def adopt(self, path: str, fd: int) -> Ticket:
        """The ticket at ``path`` whose locked descriptor ``fd`` this process inherited."""
        return Ticket(path, fd)

    def _alive(self, directory: str, name: str) -> bool:
        """Whether some process holds the lock of ``directory/name``; a dead one's file is removed."""
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            if _try_lock(fd):
                # Its owner died, or left the queue (unlinked the file, then closed it) since we opened it:
                # nobody waits for (or runs) this job any more. Remove the file only if it is still the one
                # we locked (the owner may have removed it already).
                try:
                    if os.path.samestat(os.fstat(fd), os.stat(path)):
                        os.unlink(path)
                except FileNotFoundError:
                    pass
                return False
            return True
        finally:
            os.close(fd)

    def waiting(self) -> list[str]:
        """Ticket names of the live waiting jobs, first in line first."""
        try:
            names = sorted(os.listdir(self.queue_dir))
        except FileNotFoundError:
            return []
        return [n for n in names if self._alive(self.queue_dir, n)]

    def position(self, job: str) -> tuple[int, int] | None:
        """(1-based place, queue length) of ``job`` among the live waiting jobs, None when it is not queued."""
        names = self.waiting()
        for i, name in enumerate(names):
            if name.split("-", 1)[1] == job:
                return i + 1, len(names)
        return None

    def running(self) -> list[str]:
        """Jobs holding a ``running/<job>`` lock."""
        try:
            names = sorted(os.listdir(self.running_dir))
        except FileNotFoundError:
            return []
        return [n for n in names if self._alive(self.running_dir, n)]

    def hold_running(self, job: str) -> int:
        """Mark ``job`` running for as long as this process lives (or until the returned descriptor is closed)."""
        return self._locked_file(os.path.join(self.running_dir, job))

    @contextmanager
    def decision(self) -> Iterator[None]:
        """The lock taken around one admission decision."""
        self._dirs()
        fd = os.open(os.path.join(self.directory, "lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def wait_for_turn(
    queue: AdmissionQueue,
    ticket: Ticket,
    limit: int,
    running: Callable[[], int],
    start: Callable[[], None],
    on_wait: Callable[[int, int], None] | None = None,
    poll: float = POLL,
    cancelled: Callable[[], bool] | None = None,
) -> bool:
    """Block until ``ticket`` is first in line and ``running()`` is below ``limit``; then call ``start`` (under
    the decision lock, so that the next job counts this one) and leave the queue. ``on_wait(place, length)`` is
    called when the job's place in the queue changes. Returns False, having left the queue, when ``cancelled()``
    says the job is no longer wanted."""
    last: tuple[int, int] | None = None
    while True:
        if cancelled is not None and cancelled():
            ticket.release()
            return False
        names = queue.waiting()
        # (a ticket is never missing from the list while its lock is held; if it were, it would wait last)
        place = (names.index(ticket.name) + 1 if ticket.name in names else len(names) + 1, max(len(names), 1))
        if place[0] == 1:
            with queue.decision():
                if running() < limit:
                    start()
                    ticket.release()
                    return True
        if on_wait is not None and place != last:
            on_wait(*place)
        last = place
        time.sleep(poll)
