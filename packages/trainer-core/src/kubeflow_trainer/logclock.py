"""When each log line was written, for backends whose nodes write their logs straight to files (which record
no times), so ``get_job_logs(step="all")`` merges nodes in time order. The local backend and the example
plugin use it.

While the nodes run, a thread of the process that watches them (:class:`LogClock`) looks at each log's size
every :data:`TICK` seconds and, when it grew, appends ``<size> <epoch seconds>`` to ``<log>.times``
(``node-0.log`` -> ``node-0.times``): every byte before ``size`` was written by then. :func:`timed_lines`
reads a log with those marks: a line's time is the first mark at or after its end (at most one tick late), or
None for lines after the last mark.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone

TICK = 0.05
"""Seconds between two looks at the logs' sizes."""
TIMES_SUFFIX = ".times"


def times_path(log_path: str) -> str:
    """The marks file of ``log_path`` (``node-0.log`` -> ``node-0.times``)."""
    return os.path.splitext(log_path)[0] + TIMES_SUFFIX


class LogClock:
    """Background thread that records the growth of some log files with the time (see the module doc)."""

    def __init__(self, log_paths: list[str]) -> None:
        self.sizes = dict.fromkeys(log_paths, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kft-log-clock", daemon=True)

    def start(self) -> LogClock:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Record the last growth and stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.tick()

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            self.tick()

    def tick(self) -> None:
        now = time.time()
        for path, seen in self.sizes.items():
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            if size > seen:
                self.sizes[path] = size
                try:
                    with open(times_path(path), "a") as fh:
                        fh.write(f"{size} {now:.3f}\n")
                except OSError:
                    pass


def read_marks(log_path: str) -> tuple[list[int], list[float]]:
    """The marks of a log: sizes and times, in order."""
    sizes: list[int] = []
    stamps: list[float] = []
    try:
        with open(times_path(log_path)) as fh:
            for row in fh:
                parts = row.split()
                if len(parts) == 2:
                    sizes.append(int(parts[0]))
                    stamps.append(float(parts[1]))
    except (OSError, ValueError):
        pass
    return sizes, stamps


def timed_lines(log_path: str) -> Iterator[tuple[datetime | None, str]]:
    """The complete and trailing lines of a log (without the newline) with when each was written."""
    sizes, stamps = read_marks(log_path)
    if not os.path.exists(log_path):
        return
    with open(log_path, "rb") as fh:
        end = 0
        for raw in fh:
            end += len(raw)
            i = bisect.bisect_left(sizes, end)
            when = datetime.fromtimestamp(stamps[i], timezone.utc) if i < len(stamps) else None
            yield when, raw.rstrip(b"\n").decode(errors="replace").rstrip("\r")
