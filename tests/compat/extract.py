"""Collect upstream's documented examples into tests/compat/upstream/, pinned by commit, so CI needs no network.

Sources (all Apache-2.0):

- kubeflow/trainer ``examples/``: every notebook (its code cells); other files are listed as excluded.
- kubeflow/sdk: the README's code block, the getting-started docs pages (their ``.. code-block:: python``
  blocks) and ``examples/trainer/`` scripts.

Each kept example is written as ``upstream/<repo-name>/<slug>.py``: one ``# %% [cell N]`` section per
notebook cell or docs code block, in source order, exactly as upstream wrote them except that notebook
magics (``!pip install ...``, ``%pip ...``: IPython syntax, not Python) are dropped and recorded.
``upstream/manifest.json`` lists every file looked at, kept or excluded (with the reason), with its origin
(repository, path, commit, URL).

Files are read from a bare git directory (``--git kubeflow/trainer=DIR``; e.g. the one the research
``fetch`` tool or ``git clone --bare`` gives) or, for sources that are not in a local clone at the pinned
commit, from a staging folder holding ``<owner>/<repo>/<commit>/<path>`` (``--staging DIR``). Run::

    python tests/compat/extract.py --git kubeflow/trainer=<bare-git-dir> --staging <dir>
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "upstream"

TRAINER_REPO = "kubeflow/trainer"
TRAINER_COMMIT = "8c0f5059bd51ec3ba6d6a6a7b2e1471de7bc13b3"
"""kubeflow/trainer main on 2026-08-21; every file under ``examples/`` at this commit is looked at."""

SDK_REPO = "kubeflow/sdk"
SDK_FILES: tuple[tuple[str, str], ...] = (
    ("README.md", "0563a626d2100fb3cbc970effacf895cba168dfa"),
    ("docs/source/getting-started/quickstart.rst", "22a7a3fb921f531fbc2d1be1279193e062edee9b"),
    ("docs/source/getting-started/local-development.rst", "2e0fdf7a705457ebe1c9ffeef8eee353fe13f62a"),
    ("examples/trainer/pytorch_distributed_simple.py", "e44a3bc1f38347bffce125c314e1f4a69780a293"),
)
"""kubeflow/sdk files that document ``kubeflow.trainer`` usage, each at the commit it was read at. The other
``examples/`` of kubeflow/sdk (``spark/``, ``optimizer/``, pipelines and hub tutorials) and the ``docs/``
pages of other clients do not use ``kubeflow.trainer``; ``docs/source/train/*.rst`` hold fragments of one
call each (no client, names defined elsewhere) and are not programs."""

EXCLUDED: dict[str, str] = {}
"""Declared exclusions of files that would otherwise be kept: ``"<repo>:<path>"`` -> reason."""

_MAGIC = re.compile(r"^\s*[!%]")
_USES_TRAINER = re.compile(r"\bkubeflow\.trainer\b")


@dataclass
class Example:
    """One upstream file looked at, kept or excluded."""

    name: str
    repo: str
    path: str
    commit: str
    url: str
    kept: bool
    reason: str = ""
    cells: list[str] = field(default_factory=list)
    magics_dropped: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)


def _read(repo: str, commit: str, path: str, gits: dict[str, Path], staging: Path | None) -> str:
    if repo in gits:
        return subprocess.run(
            ["git", f"--git-dir={gits[repo]}", "show", f"{commit}:{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    if staging is not None and (staging / repo / commit / path).is_file():
        return (staging / repo / commit / path).read_text()
    raise SystemExit(f"{repo}@{commit}:{path} is in neither --git {repo}=DIR nor --staging; give one of them")


def _list(repo: str, commit: str, prefix: str, gits: dict[str, Path]) -> list[str]:
    if repo not in gits:
        raise SystemExit(f"listing {repo}:{prefix} needs --git {repo}=<bare git dir> holding commit {commit}")
    out = subprocess.run(
        ["git", f"--git-dir={gits[repo]}", "ls-tree", "-r", "--name-only", commit, prefix],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sorted(out.split())


def notebook_cells(text: str) -> list[str]:
    """The code cells of a notebook, in order."""
    nb = json.loads(text)
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = cell["source"]
            cells.append("".join(src) if isinstance(src, list) else src)
    return cells


def rst_code_blocks(text: str) -> list[str]:
    """The ``.. code-block:: python`` blocks of a reStructuredText page, dedented, in order."""
    blocks: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if re.match(r"^\s*\.\. code-block::\s*python\s*$", lines[i]):
            i += 1
            body: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                body.append(lines[i])
                i += 1
            while body and not body[-1].strip():
                body.pop()
            while body and not body[0].strip():
                body.pop(0)
            indent = min(len(b) - len(b.lstrip()) for b in body if b.strip())
            blocks.append("\n".join(b[indent:] for b in body) + "\n")
        else:
            i += 1
    return blocks


def markdown_code_blocks(text: str) -> list[str]:
    """The fenced ```python blocks of a Markdown file, in order."""
    return [m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)]


def drop_magics(cells: list[str]) -> tuple[list[str], list[str]]:
    """Remove IPython magic lines (``!cmd``, ``%magic``); they are not Python. Returns (cells, dropped)."""
    kept, dropped = [], []
    for cell in cells:
        lines = []
        for line in cell.splitlines(keepends=True):
            if _MAGIC.match(line):
                dropped.append(line.strip())
            else:
                lines.append(line)
        kept.append("".join(lines))
    return kept, dropped


def undefined_names(cells: list[str]) -> list[str]:
    """Names the program reads at module level but never binds (a fragment, not a program)."""
    tree = ast.parse("\n".join(cells))
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    star = any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in ast.walk(tree))
    if star:
        return []
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in bound})


def backends_of(cells: list[str]) -> list[str]:
    """The backends a program uses, in the order it creates their clients."""
    found: list[tuple[int, str]] = []
    text = "\n".join(c for c in cells)
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for pattern, name in (
        (r"LocalProcessBackendConfig\(", "local"),
        (r"ContainerBackendConfig\(", "container"),
        (r"KubernetesBackendConfig\(|TrainerClient\(\s*\)", "kubernetes"),
    ):
        m = re.search(pattern, code)
        if m:
            found.append((m.start(), name))
    return [name for _, name in sorted(found)]


def slug(path: str) -> str:
    """``examples/local/local-training-mnist.ipynb`` -> ``local__local-training-mnist``."""
    p = Path(path)
    parts = list(p.parent.parts)
    if parts and parts[0] in {"examples", "docs"}:
        parts = parts[1:]
    if parts[:2] == ["source", "getting-started"]:
        parts = ["docs", *parts[2:]]
    return "__".join([*parts, p.stem]) if parts else p.stem


def collect(repo: str, path: str, commit: str, text: str) -> Example:
    """Turn one upstream file into an Example (kept or excluded, with the reason)."""
    url = f"https://github.com/{repo}/blob/{commit}/{path}"
    ex = Example(name=slug(path), repo=repo, path=path, commit=commit, url=url, kept=False)
    if path.endswith(".ipynb"):
        cells = notebook_cells(text)
    elif path.endswith(".rst"):
        cells = rst_code_blocks(text)
    elif path.endswith(".md"):
        cells = markdown_code_blocks(text)
        if not cells:
            ex.reason = "no Python code block (prose, or YAML/shell only)"
            return ex
    elif path.endswith(".py"):
        cells = [text]
    elif path.endswith((".yaml", ".yml")):
        ex.reason = "a Kubernetes YAML manifest (kubectl apply), not SDK code"
        return ex
    else:
        ex.reason = "not a notebook, docs page or Python script"
        return ex
    cells, ex.magics_dropped = drop_magics(cells)
    ex.cells = cells
    key = f"{repo}:{path}"
    if not any(_USES_TRAINER.search(c) for c in cells):
        ex.reason = "does not use kubeflow.trainer"
    elif key in EXCLUDED:
        ex.reason = EXCLUDED[key]
    elif missing := undefined_names(cells):
        ex.reason = f"a fragment, not a program: reads {', '.join(missing)} without defining it"
    else:
        ex.kept = True
        ex.backends = backends_of(cells)
    return ex


def render(ex: Example) -> str:
    """The vendored file: origin header, then one ``# %% [cell N]`` section per cell."""
    head = [
        f"# Upstream example {ex.name}: {ex.url}",
        f"# Repository {ex.repo}, path {ex.path}, commit {ex.commit} (Apache-2.0).",
        "# Written by tests/compat/extract.py; do not edit (edits go in tests/compat/substitutions.py).",
    ]
    if ex.magics_dropped:
        head.append(f"# Notebook magics dropped (IPython syntax, not Python): {ex.magics_dropped}")
    body = [f"# %% [cell {i}]\n{c.rstrip()}\n" for i, c in enumerate(ex.cells)]
    return "\n".join(head) + "\n\n" + "\n".join(body)


def main(argv: list[str] | None = None) -> int:
    """Collect, write the vendored examples and the manifest."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--git", action="append", default=[], metavar="OWNER/REPO=DIR", help="bare git dir")
    ap.add_argument("--staging", type=Path, help="folder with <owner>/<repo>/<commit>/<path> files")
    args = ap.parse_args(argv)
    gits = {k: Path(v) for k, v in (g.split("=", 1) for g in args.git)}

    examples: list[Example] = []
    for path in _list(TRAINER_REPO, TRAINER_COMMIT, "examples", gits):
        text = _read(TRAINER_REPO, TRAINER_COMMIT, path, gits, args.staging)
        examples.append(collect(TRAINER_REPO, path, TRAINER_COMMIT, text))
    for path, commit in SDK_FILES:
        examples.append(collect(SDK_REPO, path, commit, _read(SDK_REPO, commit, path, gits, args.staging)))

    for old in OUT.glob("*/*.py"):
        old.unlink()
    for ex in examples:
        if ex.kept:
            dest = OUT / ex.repo.split("/")[1] / f"{ex.name}.py"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(render(ex))
    manifest = [{k: v for k, v in asdict(ex).items() if k != "cells"} for ex in examples]
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    kept = sum(ex.kept for ex in examples)
    print(f"{len(examples)} files looked at, {kept} kept, {len(examples) - kept} excluded")
    for ex in examples:
        print(f"  {'kept' if ex.kept else 'excluded'}: {ex.repo}:{ex.path} {ex.backends or ex.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
