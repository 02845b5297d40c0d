"""How jobs, runtimes and backends show: short reprs, compact HTML tables for Jupyter, and the row values the
command line prints.

Pure string building (``html.escape``), no display library: a notebook renders ``_repr_html_`` itself, and the
import stays light. :class:`JobList`, :class:`RuntimeList` and :class:`BackendList` are ``list`` subclasses
(equal to, and used like, the lists upstream returns) that add the HTML table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubeflow_trainer.types import Runtime, Step, TrainJob

_STATUS_COLOURS = {"Complete": "#1a7f37", "Failed": "#cf222e", "Running": "#0969da", "Created": "#9a6700"}
MAX_MESSAGE = 120
"""Characters of a job's message shown in a table cell or repr (the full text is in ``job.message``)."""


def shorten(text: str | None, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    if not text:
        return ""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def steps_summary(steps: Sequence[Step]) -> str:
    """``"2 Complete"``, ``"1 Running, 1 Created"``: step counts by status, in the order first seen."""
    counts = Counter(str(s.status) if s.status is not None else "Unknown" for s in steps)
    return ", ".join(f"{n} {status}" for status, n in counts.items()) or "-"


def when(moment: datetime | None) -> str:
    """A timestamp in the local time zone to the second: ``2026-12-07 04:05:06``."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def preparing(job: TrainJob) -> str:
    """What the job does before its nodes run (``installing packages: 3/12 packages``), where the SDK reports
    it (a ``preparation`` with ``describe()`` on the job); else empty."""
    preparation = getattr(job, "preparation", None)
    describe = getattr(preparation, "describe", None)
    return shorten(str(describe()), 80) if callable(describe) else ""


def job_row(job: TrainJob) -> dict[str, str]:
    """The columns a job list shows."""
    return {
        "name": job.name,
        "status": str(job.status),
        "runtime": job.runtime.name if job.runtime is not None else "",
        "nodes": str(job.num_nodes),
        "steps": steps_summary(job.steps),
        "preparing": preparing(job),
        "created": when(job.creation_timestamp),
        "message": shorten(job.message),
    }


def step_row(step: Step) -> dict[str, str]:
    """The columns a job's step table shows."""
    return {
        "step": step.name,
        "status": str(step.status) if step.status is not None else "",
        "device": "" if step.device == "Unknown" else f"{step.device} x{step.device_count}",
        "exit code": "" if step.exit_code is None else str(step.exit_code),
        "message": shorten(step.message),
    }


def runtime_row(runtime: Runtime) -> dict[str, str]:
    """The columns a runtime list shows."""
    trainer = runtime.trainer
    return {
        "name": runtime.name,
        "framework": trainer.framework,
        "trainer": str(getattr(trainer.trainer_type, "value", trainer.trainer_type)),
        "nodes": str(trainer.num_nodes),
        "device": "" if trainer.device == "Unknown" else f"{trainer.device} x{trainer.device_count}",
        "image": trainer.image,
    }


# Reprs -----------------------------------------------------------------------------------------------------
def job_repr(job: TrainJob) -> str:
    """``TrainJob(name='x', status='Complete', runtime='torch-distributed', num_nodes=2, steps='2 Complete',
    backend='local', created='...')`` (plus the message, shortened, when there is one)."""
    row = job_row(job)
    parts = [
        f"name={job.name!r}",
        f"status={row['status']!r}",
        f"runtime={row['runtime']!r}",
        f"num_nodes={job.num_nodes}",
        f"steps={row['steps']!r}",
    ]
    if row["preparing"]:
        parts.append(f"preparing={row['preparing']!r}")
    if job.backend:
        parts.append(f"backend={job.backend!r}")
    parts.append(f"created={row['created']!r}")
    if job.message:
        parts.append(f"message={shorten(job.message, 80)!r}")
    return f"TrainJob({', '.join(parts)})"


def runtime_repr(runtime: Runtime) -> str:
    """``Runtime(name='torch-distributed', framework='torch', trainer='CustomTrainer', num_nodes=1, image=...)``."""
    row = runtime_row(runtime)
    parts = [
        f"name={runtime.name!r}",
        f"framework={row['framework']!r}",
        f"trainer={row['trainer']!r}",
        f"num_nodes={runtime.trainer.num_nodes}",
    ]
    if row["device"]:
        parts.append(f"device={row['device']!r}")
    if row["image"]:
        parts.append(f"image={row['image']!r}")
    return f"Runtime({', '.join(parts)})"


# HTML ------------------------------------------------------------------------------------------------------
_TABLE = 'style="border-collapse:collapse;font-size:0.9em"'
_CELL = 'style="text-align:left;padding:2px 8px;border-bottom:1px solid #ddd"'


def _cell(column: str, value: str, tag: str = "td") -> str:
    text = escape(value)
    if column == "status" and value in _STATUS_COLOURS:
        text = f'<span style="color:{_STATUS_COLOURS[value]};font-weight:600">{text}</span>'
    return f"<{tag} {_CELL}>{text}</{tag}>"


def html_table(rows: Sequence[dict[str, str]], caption: str = "", empty: str = "(none)") -> str:
    """A compact HTML table of ``rows`` (dicts with the same keys); columns empty in every row are left out."""
    if not rows:
        return f"<div><i>{escape(caption + ': ' if caption else '')}{escape(empty)}</i></div>"
    columns = [c for c in rows[0] if any(r.get(c) for r in rows) or c in ("name", "step")]
    head = "".join(_cell(c, c.upper(), "th") for c in columns)
    body = "".join("<tr>" + "".join(_cell(c, r.get(c, "")) for c in columns) + "</tr>" for r in rows)
    cap = f'<caption style="text-align:left;font-weight:600">{escape(caption)}</caption>' if caption else ""
    return f"<table {_TABLE}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def job_html(job: TrainJob) -> str:
    """One job: its summary row, then a table of its steps, then progress/metrics it reported."""
    summary = job_row(job)
    summary.pop("message")
    parts = [html_table([summary], caption=f"TrainJob {job.name}" + (f" ({job.backend})" if job.backend else ""))]
    if job.message:
        parts.append(f'<div style="font-size:0.9em"><b>message:</b> {escape(shorten(job.message, 400))}</div>')
    parts.append(html_table([step_row(s) for s in job.steps], caption="steps", empty="no steps yet"))
    status = job.trainer_status
    if status is not None and (status.progress_percentage is not None or status.metrics):
        row = {"progress": "" if status.progress_percentage is None else f"{status.progress_percentage} %"}
        row.update({k: str(v) for k, v in status.metrics.items()})
        parts.append(html_table([row], caption="trainer status"))
    return "<div>" + "".join(parts) + "</div>"


class JobList(list["TrainJob"]):
    """What ``list_jobs`` returns: a list of jobs that a notebook shows as a table."""

    def _repr_html_(self) -> str:
        return html_table([job_row(j) for j in self], caption=f"{len(self)} TrainJob(s)", empty="no jobs")


class RuntimeList(list["Runtime"]):
    """What ``list_runtimes`` returns: a list of runtimes that a notebook shows as a table."""

    def _repr_html_(self) -> str:
        return html_table([runtime_row(r) for r in self], caption=f"{len(self)} runtime(s)", empty="no runtimes")


# Backends --------------------------------------------------------------------------------------------------
@dataclass
class BackendInfo:
    """One installed backend, or one that cannot be used and why (``problem``)."""

    name: str
    distribution: str = ""
    version: str = ""
    description: str = ""
    capabilities: list[str] = field(default_factory=list)
    problem: str = ""
    """Empty for a usable backend; else why it cannot be used (failed to load, name conflict)."""

    def row(self) -> dict[str, str]:
        """The columns a backend list shows."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "capabilities": ", ".join(self.capabilities),
            "problem": shorten(self.problem, 160),
        }


def describe_backends(registry: Any = None) -> list[BackendInfo]:
    """Every installed backend with its distribution, version and capabilities, then the plugins that failed to
    load and the names two distributions register (with the reason each cannot be used)."""
    from importlib import metadata

    from kubeflow_trainer.registry import DISABLE_ENV, default_registry

    reg = registry or default_registry()

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return ""

    infos = [
        BackendInfo(
            name=s.name,
            distribution=s.distribution,
            version=version(s.distribution),
            description=s.description,
            capabilities=sorted(str(c) for c in s.capabilities),
        )
        for s in reg.specs()
    ]
    for failure in reg.failures():
        infos.append(
            BackendInfo(
                name=failure.entry_point,
                distribution=failure.distribution,
                version=version(failure.distribution),
                problem=f"failed to load: {failure.error}",
            )
        )
    for name, dists in reg.conflicts().items():
        for dist in dists:
            infos.append(
                BackendInfo(
                    name=name,
                    distribution=dist,
                    version=version(dist),
                    problem=f"name conflict: registered by {' and '.join(dists)}; uninstall one or set {DISABLE_ENV}",
                )
            )
    return infos


class BackendList(list[str]):
    """What ``available_backends()`` returns: the usable backends' names; a notebook shows a table of every
    installed backend (distribution, version, capabilities, and why a broken one cannot be used)."""

    def __init__(self, names: Iterable[str], registry: Any = None) -> None:
        super().__init__(names)
        self._registry = registry

    def _repr_html_(self) -> str:
        rows = [b.row() for b in describe_backends(self._registry)]
        return html_table(rows, caption="backends", empty="no backend installed")
