"""Printing a job's logs: one step, or several at once with a ``[step]`` prefix, following or not, the last N
lines only.

The seam for the SDK's own log features: when ``TrainerClient.get_job_logs`` takes ``tail_lines`` the CLI
passes ``--tail`` through; otherwise it keeps the last N lines itself. When the SDK merges every node's lines
itself (``step=kubeflow_trainer.logs.ALL_NODES``: in time order, ``[node-N]`` prefixes), every node's logs are
read through it; otherwise several steps are read concurrently, one thread per step, lines printed as they
arrive.
"""

from __future__ import annotations

import inspect
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

NODE_PREFIX = "node-"


def node_steps(job: Any) -> list[str]:
    """The job's steps in the order they run: initializers first, then ``node-0`` ... ``node-N``."""
    names = [s.name for s in job.steps]
    nodes = sorted((n for n in names if n.startswith(NODE_PREFIX)), key=lambda n: (len(n), n))
    expected = [f"{NODE_PREFIX}{i}" for i in range(job.num_nodes)]
    nodes += [n for n in expected if n not in nodes]
    return [n for n in names if not n.startswith(NODE_PREFIX)] + nodes


def _supports(client: Any, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(client.get_job_logs).parameters
    except (TypeError, ValueError):
        return False


def step_lines(client: Any, name: str, step: str, follow: bool, tail: int | None) -> Iterator[str]:
    """Lines of one step: all, or the last ``tail``; with ``follow`` then the new ones until the step ends."""
    if tail is not None and _supports(client, "tail_lines"):
        yield from client.get_job_logs(name, step=step, follow=follow, tail_lines=tail)
        return
    if tail is None:
        yield from client.get_job_logs(name, step=step, follow=follow)
        return
    so_far = list(client.get_job_logs(name, step=step, follow=False))
    yield from so_far[-tail:] if tail > 0 else []
    if follow:
        for index, line in enumerate(client.get_job_logs(name, step=step, follow=True)):
            if index >= len(so_far):
                yield line


def _with_retry(
    client: Any, name: str, step: str, follow: bool, tail: int | None, finished: Callable[[], bool]
) -> Iterator[str]:
    """A step a backend has not created yet (pods are scheduled after submit) is waited for while following."""
    from kubeflow_trainer.errors import StepNotFoundError

    while True:
        try:
            yield from step_lines(client, name, step, follow, tail)
            return
        except StepNotFoundError:
            if not follow or finished():
                raise
            time.sleep(0.5)


def merged_step() -> str | None:
    """The SDK's step name for "every node merged in time order", where the installed SDK has it."""
    try:
        from kubeflow_trainer import logs
    except ImportError:
        return None
    value = getattr(logs, "ALL_NODES", None)
    return value if isinstance(value, str) else None


def print_all_nodes(client: Any, name: str, steps: list[str], *, follow: bool, tail: int | None) -> None:
    """Every node's logs (initializer steps first, whole), merged by the SDK where it can, with ``[step]``
    prefixes."""
    merged = merged_step()
    if merged is None or not _supports(client, "tail_lines"):
        print_logs(client, name, steps, follow=follow, tail=tail, prefix=True)
        return
    initializers = [s for s in steps if not s.startswith(NODE_PREFIX)]
    if initializers:
        print_logs(client, name, initializers, follow=follow, tail=tail, prefix=True)
    for line in client.get_job_logs(name, step=merged, follow=follow, tail_lines=tail):
        click.echo(line)


def print_logs(
    client: Any, name: str, steps: list[str], *, follow: bool, tail: int | None, prefix: bool | None = None
) -> None:
    """Print the logs of ``steps`` (a ``[step]`` prefix when there are several)."""
    show_prefix = len(steps) > 1 if prefix is None else prefix
    if len(steps) == 1:
        for line in _with_retry(client, name, steps[0], follow, tail, lambda: _ended(client, name)):
            click.echo(f"[{steps[0]}] {line}" if show_prefix else line)
        return
    if not follow:
        for step in steps:
            for text in step_lines(client, name, step, False, tail):
                click.echo(f"[{step}] {text}" if show_prefix else text)
        return
    lines: queue.Queue[tuple[str, str | None, BaseException | None]] = queue.Queue()

    def read(step: str) -> None:
        try:
            for line in _with_retry(client, name, step, True, tail, lambda: _ended(client, name)):
                lines.put((step, line, None))
        except BaseException as exc:  # handed to the main thread, which raises it
            lines.put((step, None, exc))
            return
        lines.put((step, None, None))

    for step in steps:
        threading.Thread(target=read, args=(step,), name=f"logs-{step}", daemon=True).start()
    running = len(steps)
    while running:
        source, got, exc = lines.get()
        if got is not None:
            click.echo(f"[{source}] {got}" if show_prefix else got)
            continue
        running -= 1
        if exc is not None and not _is_missing_step(exc):
            raise exc


def _is_missing_step(exc: BaseException) -> bool:
    from kubeflow_trainer.errors import StepNotFoundError

    return isinstance(exc, StepNotFoundError)


def _ended(client: Any, name: str) -> bool:
    try:
        return str(client.get_job(name).status) in ("Complete", "Failed")
    except Exception:
        return True
