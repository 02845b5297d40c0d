"""Printing results: aligned tables (rich) for people, JSON for scripts. rich is imported when a table prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

FORMATS = ("table", "json")


def emit_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (datetimes and other objects as strings)."""
    click.echo(json.dumps(value, indent=2, default=str))


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    # Piped output is not cut to 80 columns: scripts and `grep` see whole names.
    return Console(file=stream, highlight=False, soft_wrap=not tty, width=None if tty else 400, emoji=False)


_STYLES = {"Complete": "green", "Failed": "red", "Running": "blue", "Created": "yellow", "ok": "green", "fail": "red"}


def table(rows: Sequence[dict[str, str]], empty: str = "nothing to show", title: str | None = None) -> None:
    """Rows (dicts with the same keys) as an aligned table; columns empty in every row are left out."""
    if not rows:
        click.echo(empty)
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    columns = [c for c in rows[0] if any(r.get(c) for r in rows) or c in ("name", "step")]
    grid = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False, show_edge=False)
    for column in columns:
        grid.add_column(column.upper(), overflow="fold")
    for row in rows:
        cells = []
        for column in columns:
            value = str(row.get(column, ""))
            style = _STYLES.get(value, "") if column in ("status", "result") else ""
            cells.append(Text(value, style=style))
        grid.add_row(*cells)
    console = _console()
    with console.capture() as captured:
        console.print(grid)
    for line in captured.get().splitlines():
        click.echo(line.rstrip())


def fields(pairs: Sequence[tuple[str, str]]) -> None:
    """``key: value`` lines, keys aligned."""
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        click.echo(f"{key + ':':{width + 1}s} {value}")


def error(message: str) -> None:
    """An error message on stderr."""
    click.echo(f"Error: {message}", err=True)
