"""Log lines as users read them: the last ``N`` lines (``tail_lines``), all nodes merged in time order with a
step prefix (``step=ALL_NODES``), and ``\\r`` progress bars shown at their latest state.

Backends yield lines through :meth:`Backend.get_job_logs`; a backend that knows when each line was written
also implements :meth:`Backend.get_job_log_entries` (the container engines and Kubernetes do, through their
logs APIs' timestamps; the local backends record them beside the log). :class:`TrainerClient.get_job_logs`
builds on these helpers, so every backend gets the features.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import NamedTuple

ALL_NODES = "all"
"""``get_job_logs(name, step=ALL_NODES)``: every node's lines, merged in time order, each prefixed
``[node-N] ``."""


class LogEntry(NamedTuple):
    """One log line and when it was written (None where the backend does not know)."""

    time: datetime | None
    text: str


def latest_state(text: str) -> str:
    """A line as a terminal shows it: after its last carriage return (a ``tqdm`` bar's latest update, not every
    update it ever printed); a trailing ``\\r`` is dropped first."""
    text = text.rstrip("\r")
    return text.rsplit("\r", 1)[-1] if "\r" in text else text


def tail(lines: Iterable[str], count: int) -> list[str]:
    """The last ``count`` of ``lines`` (none for 0)."""
    return list(deque(lines, maxlen=count)) if count > 0 else []


def follow_from_tail(
    read_all: Callable[[], Iterable[str]], follow: Callable[[], Iterator[str]], count: int
) -> Iterator[str]:
    """``follow()``'s lines, starting with the last ``count`` lines written so far (``read_all()`` counts them;
    logs only grow, so the first ``written - count`` followed lines are the ones to skip)."""
    written = sum(1 for _ in read_all())
    skip = max(0, written - count)
    for index, line in enumerate(follow()):
        if index >= skip:
            yield line


def merge_by_time(streams: Mapping[str, Iterable[LogEntry]]) -> Iterator[tuple[str, LogEntry]]:
    """Finished streams merged in time order (stable: equal or unknown times keep each stream's order and the
    streams' order)."""
    import heapq

    def keyed(
        step_index: int, step: str, entries: Iterable[LogEntry]
    ) -> Iterator[tuple[float, int, int, str, LogEntry]]:
        last = float("-inf")
        for n, entry in enumerate(entries):
            if entry.time is not None:
                last = entry.time.timestamp()
            yield (last, step_index, n, step, entry)

    merged = heapq.merge(*(keyed(i, step, entries) for i, (step, entries) in enumerate(streams.items())))
    for _t, _i, _n, step, entry in merged:
        yield step, entry


REORDER_SECONDS = 0.25
"""How long :func:`merge_following` holds a followed line for lines of other nodes written before it."""


def merge_following(
    streams: dict[str, Iterator[LogEntry]], window: float = REORDER_SECONDS
) -> Iterator[tuple[str, LogEntry]]:
    """Followed streams merged in time order (one reader thread per stream) until every stream ends.

    Lines of different nodes reach the client in whatever order their streams deliver them; each line is held
    ``window`` seconds after it arrived, and the lines held are given in the order they were written (a
    watermark: a line written earlier but delivered more than ``window`` later than another still comes
    after it). Lines with no time sort by when they arrived; each stream keeps its own order."""
    import heapq
    import time as clock

    done = object()
    inbox: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=10000)

    def pump(step: str, entries: Iterator[LogEntry]) -> None:
        try:
            for entry in entries:
                inbox.put((step, entry))
        except BaseException as exc:  # handed to the consumer, raised there
            inbox.put((step, exc))
        finally:
            inbox.put((step, done))

    threads = [threading.Thread(target=pump, args=item, daemon=True) for item in streams.items()]
    for thread in threads:
        thread.start()
    open_streams = len(threads)
    held: list[tuple[float, int, float, str, LogEntry]] = []  # (written, arrival order, arrived, step, entry)
    last: dict[str, float] = {}  # each stream's latest time: a line with none (or an older one) keeps its place
    arrivals = 0
    while open_streams or held:
        oldest = min((h[2] for h in held), default=None)
        wait = None if oldest is None else max(0.0, oldest + window - clock.monotonic())
        try:
            step, item = inbox.get(timeout=wait) if open_streams else ("", None)
        except queue.Empty:
            step, item = "", None
        if item is done:
            open_streams -= 1
        elif isinstance(item, BaseException):
            raise item
        elif isinstance(item, LogEntry):
            written = item.time.timestamp() if item.time is not None else clock.time()
            written = max(written, last.get(step, float("-inf")))
            last[step] = written
            arrivals += 1
            heapq.heappush(held, (written, arrivals, clock.monotonic(), step, item))
        now = clock.monotonic()
        while held and (not open_streams or min(h[2] for h in held) + window <= now):
            _written, _n, _arrived, out_step, entry = heapq.heappop(held)
            yield out_step, entry
