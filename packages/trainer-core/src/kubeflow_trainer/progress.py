"""A live display of what a job does before its nodes run (installing packages, pulling an image, running
initializers, starting nodes), for :meth:`TrainerClient.wait_for_job_status`,
:meth:`TrainerClient.get_job_logs` with ``follow=True`` and the command line.

It shows ``TrainJob.preparation`` (a :class:`~kubeflow_trainer.types.Preparation`: phase, ``done`` of
``total`` ``unit``, detail) as the backend reports it, else the job's status and message:

- in a terminal: a live progress bar (`rich <https://rich.readthedocs.io>`_, imported on first use);
- in a Jupyter notebook: one output that updates in place (an HTML ``<progress>`` bar and the text, through
  IPython's ``display(..., display_id=True)`` and ``update``: no widget library needed, and the notebook keeps
  the last state when saved);
- elsewhere (a pipe, a log file, CI): one plain line each time the text changes, e.g.
  ``[my-job] downloading packages: 3/12 packages (torch, 180.2MiB)``.

The display ends when the job runs (or ends). It is off with ``progress=False`` or the environment variable
``KUBEFLOW_TRAINER_PROGRESS=0``; ``KUBEFLOW_TRAINER_PROGRESS=plain`` forces plain lines.

Use it directly (the CLI does)::

    with ProgressDisplay("my-job") as display:
        display.update(client.get_job("my-job"))
"""

from __future__ import annotations

import html
import os
import sys
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubeflow_trainer.types import Event, Preparation, TrainJob

PREPARING_REASON = "Preparing"
"""Reason of the job events backends record for the steps of a job's preparation (message: what and how far,
e.g. ``downloading packages: 3/12 packages``). The display shows each one, so a quick step is not missed
between two polls."""

RECENT_SECONDS = 120.0
"""Preparation events older than this when a display opens are not shown."""

PROGRESS_ENV = "KUBEFLOW_TRAINER_PROGRESS"
"""``0``/``off``/``false``: no display; ``plain``: plain lines even in a terminal; unset/``1``: automatic."""


def progress_mode(progress: bool | None = None, stream: IO[str] | None = None) -> str:
    """``"off"``, ``"plain"`` or ``"live"`` for ``progress`` (None: the environment decides) on ``stream``."""
    setting = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if progress is False or (progress is None and setting in ("0", "off", "false", "no")):
        return "off"
    if setting == "plain":
        return "plain"
    stream = stream or sys.stderr
    if _in_notebook() or bool(getattr(stream, "isatty", lambda: False)()):
        return "live"
    return "plain"


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def describe(job: TrainJob) -> tuple[str, int | None, int | None]:
    """What the display shows for ``job``: the text, and ``done``/``total`` when there are numbers."""
    prep = job.preparation
    if prep is not None:
        return prep.describe(), prep.done, prep.total
    text = str(job.status)
    if job.message:
        text += f": {job.message}"
    return text, None, None


class ProgressDisplay:
    """Shows a job's preparation while it lasts. :meth:`update` with each fresh ``TrainJob``; :meth:`close`
    (or leave the ``with`` block) when done. Updates after the job started running close it."""

    def __init__(self, name: str, *, progress: bool | None = None, stream: IO[str] | None = None) -> None:
        self.name = name
        self.stream = stream or sys.stderr
        self.mode = progress_mode(progress, self.stream)
        self.updates: list[str] = []
        """Every distinct text shown, in order (what a test or a caller may inspect)."""
        self._live: Any = None
        self._task: Any = None
        self._notebook = self.mode == "live" and _in_notebook()
        self._handle: Any = None
        self._opened = time.monotonic()
        self._seen: set[tuple[Any, str]] = set()
        self._since = time.time() - RECENT_SECONDS
        self.closed = self.mode == "off"

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, job: TrainJob, events: list[Event] | None = None) -> None:
        """Show ``job``'s preparation (first the :data:`PREPARING_REASON` events among ``events`` not shown
        yet); closes the display once the job runs or has ended."""
        if self.closed:
            return
        preparing = job.preparation is not None or str(job.status) == "Created"
        if not preparing and not self.updates:
            self.close()  # opened after the preparation: nothing to show
            return
        for event in events or []:
            key = (event.event_time, event.message)
            if event.event_time.timestamp() < self._since:
                continue  # an old job's history: not news to whoever opens a display now
            if event.reason == PREPARING_REASON and key not in self._seen:
                self._seen.add(key)
                if not self.updates or self.updates[-1] != event.message:
                    self.note(event.message)
        if not preparing:
            self.close()
            return
        text, done, total = describe(job)
        if self.updates and self.updates[-1] == text and self.mode == "plain":
            return
        if not self.updates or self.updates[-1] != text:
            self.updates.append(text)
        if self.mode == "plain":
            print(f"[{self.name}] {text}", file=self.stream, flush=True)
            return
        self._show_live(text, done, total)

    def show(self, preparation: Preparation) -> None:
        """Show a preparation the caller measured itself, before the job exists (the container backends'
        image pull inside ``train()``): one plain line per distinct text, or the live bar."""
        if self.closed:
            return
        text = preparation.describe()
        if self.updates and self.updates[-1] == text:
            return
        self.updates.append(text)
        if self.mode == "plain":
            print(f"[{self.name}] {text}", file=self.stream, flush=True)
        else:
            self._show_live(text, preparation.done, preparation.total)

    def note(self, text: str) -> None:
        """Show a line of text without numbers (e.g. ``submitted``)."""
        if self.closed:
            return
        self.updates.append(text)
        if self.mode == "plain":
            print(f"[{self.name}] {text}", file=self.stream, flush=True)
        else:
            self._show_live(text, None, None)

    def _show_live(self, text: str, done: int | None, total: int | None) -> None:
        if self._notebook:
            earlier = [t for t in self.updates[:-1] if t != text][-NotebookProgress.EARLIER :]
            view = NotebookProgress(self.name, text, done, total, time.monotonic() - self._opened, earlier)
            if self._handle is None:
                import importlib

                display: Any = importlib.import_module("IPython.display").display  # present: this is a kernel
                self._handle = display(view, display_id=True)
            else:
                self._handle.update(view)
            return
        if self._live is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            console = Console(file=self.stream)
            self._live = Progress(
                SpinnerColumn(),
                TextColumn(f"[bold]{self.name}[/bold] {{task.description}}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self._live.start()
            self._task = self._live.add_task(text, total=None)
        self._live.update(self._task, description=text, completed=done or 0, total=total)

    def close(self) -> None:
        """End the display (a live bar stays on screen at its last state)."""
        if self.closed:
            return
        self.closed = True
        if self._live is not None:
            self._live.stop()
            self._live = None


class NotebookProgress:
    """One state of a progress display as a notebook shows it: the last few earlier steps (greyed), then an
    HTML ``<progress>`` bar (indeterminate without numbers) with the current text; ``[job] text`` lines as plain
    text. The saved notebook keeps the last state, so what the job went through stays readable."""

    EARLIER = 5
    """Earlier steps shown above the bar."""

    def __init__(
        self,
        name: str,
        text: str,
        done: int | None,
        total: int | None,
        elapsed: float,
        earlier: list[str] | None = None,
    ) -> None:
        self.name, self.text, self.done, self.total, self.elapsed = name, text, done, total, elapsed
        self.earlier = list(earlier or [])

    def _repr_html_(self) -> str:
        value = f' value="{self.done}" max="{self.total}"' if self.done is not None and self.total else ""
        past = "".join(f'<div style="opacity:0.6">{html.escape(t)}</div>' for t in self.earlier)
        return (
            f'<div class="kft-progress">{past}<b>{html.escape(self.name)}</b> <progress{value}></progress> '
            f'{html.escape(self.text)} <span style="opacity:0.6">{self.elapsed:.0f}s</span></div>'
        )

    def __repr__(self) -> str:
        return "\n".join(f"[{self.name}] {t}" for t in [*self.earlier, self.text])
