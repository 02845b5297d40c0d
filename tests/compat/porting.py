"""Port a vendored upstream example: rewrite ``kubeflow.trainer`` imports to ``kubeflow_trainer`` (same
submodule paths), apply the declared substitutions, and choose the cells that run here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from substitutions import SKIPPED_CELLS, SUBSTITUTIONS

UPSTREAM = Path(__file__).resolve().parent / "upstream"
_CELL = re.compile(r"^# %% \[cell (\d+)\]\n", re.M)
_IMPORT = re.compile(r"\bkubeflow\.trainer\b")


@dataclass(frozen=True)
class Example:
    """A kept upstream example and where it came from."""

    key: str
    """``<repo-name>/<slug>``, e.g. ``trainer/local__local-training-mnist``."""
    url: str
    backends: tuple[str, ...]
    cells: tuple[str, ...]


def load_examples() -> list[Example]:
    """Every kept example of the manifest, with its cells as vendored."""
    out = []
    for entry in json.loads((UPSTREAM / "manifest.json").read_text()):
        if not entry["kept"]:
            continue
        key = f"{entry['repo'].split('/')[1]}/{entry['name']}"
        text = (UPSTREAM / f"{key}.py").read_text()
        parts = _CELL.split(text)
        cells = tuple(parts[i + 1] for i in range(1, len(parts), 2))
        out.append(Example(key=key, url=entry["url"], backends=tuple(entry["backends"]), cells=cells))
    return out


def rewrite_imports(code: str) -> str:
    """``kubeflow.trainer[.sub.path]`` -> ``kubeflow_trainer[.sub.path]``: the one edit every example gets."""
    return _IMPORT.sub("kubeflow_trainer", code)


def apply_substitutions(key: str, code: str) -> str:
    """Apply the example's declared substitutions; each must match exactly its declared count."""
    for sub in SUBSTITUTIONS.get(key, ()):
        found = code.count(sub.old)
        if found != sub.count:
            raise ValueError(
                f"{key}: substitution for {sub.reason!r} expects {sub.count} occurrence(s) of {sub.old!r}, "
                f"found {found}; upstream changed: update tests/compat/substitutions.py"
            )
        code = code.replace(sub.old, sub.new)
    return code


def _calls_train(cell: str) -> bool:
    code = "\n".join(line for line in cell.splitlines() if not line.lstrip().startswith("#"))
    return ".train(" in code


def cells_to_run(example: Example) -> list[int]:
    """All cells, minus the declared skipped ones; for an example that uses Kubernetes, stop after the last
    cell that calls ``train``: KWOK nodes run no containers, so later cells (logs, results) cannot apply."""
    indexes = [i for i in range(len(example.cells)) if i not in SKIPPED_CELLS.get(example.key, {})]
    if "kubernetes" in example.backends:
        last = max((i for i in indexes if _calls_train(example.cells[i])), default=len(example.cells) - 1)
        indexes = [i for i in indexes if i <= last]
    return indexes


def port(example: Example, rewrite: bool = True) -> str:
    """The program that runs: the chosen cells, in order, rewritten and substituted (``rewrite=False``: the
    same cells and substitutions with upstream's imports, to run on upstream's SDK)."""
    unknown = set(SKIPPED_CELLS.get(example.key, {})) - set(range(len(example.cells)))
    if unknown:
        raise ValueError(f"{example.key}: SKIPPED_CELLS names cells {sorted(unknown)} that do not exist")
    chosen = cells_to_run(example)
    text = "".join(f"# %% [cell {i}]\n{example.cells[i]}" for i in chosen)
    return apply_substitutions(example.key, rewrite_imports(text) if rewrite else text)


def cell_of_line(program: str, line: int) -> int | None:
    """The upstream cell a line number of the ported program belongs to (for failure messages)."""
    cell = None
    for n, text in enumerate(program.splitlines(), start=1):
        if m := _CELL.match(text + "\n"):
            cell = int(m.group(1))
        if n == line:
            return cell
    return cell
