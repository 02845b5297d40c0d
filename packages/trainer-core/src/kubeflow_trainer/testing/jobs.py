"""Training functions used by the conformance kit. They need only the standard library (torch where noted).

They live in a module (not in test bodies) so that their source can be shipped like any user function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def echo_job(message: str, repeat: int = 1) -> None:
    """Print ``message`` and the values the kit checks, then exit 0."""
    import os

    for i in range(repeat):
        print(f"ECHO {message} {i}", flush=True)
    print(f"ENV KFT_CONFORMANCE={os.environ.get('KFT_CONFORMANCE', '<unset>')}", flush=True)
    print(f"PATH-SET {bool(os.environ.get('PATH'))}", flush=True)


def streaming_job(pause: float) -> None:
    """Print a line, wait ``pause`` seconds, print another: the kit checks the first arrives early."""
    import time

    print("STREAM first", flush=True)
    time.sleep(pause)
    print("STREAM second", flush=True)


def failing_job(message: str) -> None:
    """Print to stderr and fail with an exception."""
    import sys

    print(f"STDERR {message}", file=sys.stderr, flush=True)
    raise RuntimeError(f"conformance failure {message}")


def sleeping_job(seconds: float) -> None:
    """Print a line and sleep."""
    import time

    print("SLEEPING", flush=True)
    time.sleep(seconds)


def rank_job() -> None:
    """Print the distributed environment every process sees."""
    import os

    keys = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "PET_NNODES", "PET_NODE_RANK")
    values = " ".join(f"{k}={os.environ.get(k, '')}" for k in keys)
    print(f"RANKENV {values}", flush=True)


def allreduce_job() -> None:
    """gloo all-reduce of (rank + 1) over all processes; prints the sum and the expected value."""
    import sys

    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    value = torch.tensor([float(rank + 1)])
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    expected = world * (world + 1) / 2
    sys.stdout.write(f"ALLREDUCE rank={rank} world={world} sum={value.item()} expected={expected}\n")
    sys.stdout.flush()
    dist.barrier()  # nobody tears gloo down while a peer still talks to it
    dist.destroy_process_group()
    if value.item() != expected:
        raise SystemExit(1)


def tree_job(variables: list[str]) -> None:
    """Print a digest of the directory each environment variable names (``TREE <var> files=N sha256=...``).

    The digest covers each file's relative path and content, in sorted path order (see ``tree_digest``).
    """
    import hashlib
    import os

    for var in variables:
        root = os.environ.get(var)
        if not root or not os.path.isdir(root):
            print(f"TREE {var} missing ({root!r})", flush=True)
            continue
        paths = sorted(os.path.relpath(os.path.join(d, f), root) for d, _dirs, files in os.walk(root) for f in files)
        digest = hashlib.sha256()
        for rel in paths:
            digest.update(rel.encode() + b"\0")
            with open(os.path.join(root, rel), "rb") as fh:
                digest.update(fh.read())
        print(f"TREE {var} files={len(paths)} sha256={digest.hexdigest()}", flush=True)


def tree_digest(files: dict[str, bytes]) -> str:
    """The ``tree_job`` digest of a directory holding ``files`` (relative path -> content)."""
    import hashlib

    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0" + files[rel])
    return f"files={len(files)} sha256={digest.hexdigest()}"


def missing_module_job() -> None:
    """Fail as a user's function most often does: importing a module the job's environment lacks."""
    print("IMPORTING helpers", flush=True)
    import helpers  # type: ignore[import-not-found]  # noqa: F401 - the kit's root-cause check names this line


def logs_job(lines: int, pause: float) -> None:
    """Print ``lines`` numbered lines, ``pause`` seconds apart, a ``\\r`` progress bar, and the interleaving
    marks the merged-logs check orders: rank 0 prints ``MARK a`` then, 2 pauses later, ``MARK c``; rank 1 prints
    ``MARK b`` one pause after rank 0's first mark."""
    import os
    import time

    rank = int(os.environ.get("KUBEFLOW_TRAINER_NODE_RANK") or os.environ.get("GROUP_RANK") or 0)  # torchrun's
    for i in range(lines):
        print(f"LINE {i}", flush=True)
    print("".join(f"\rbar {p}%" for p in (0, 50, 100)), flush=True)
    if rank == 0:
        print("MARK a", flush=True)
        time.sleep(2 * pause)
        print("MARK c", flush=True)
    elif rank == 1:
        time.sleep(pause)
        print("MARK b", flush=True)


def checkpoint_bytes(size: int, seed: int = 14) -> bytes:
    """The deterministic content ``checkpoint_job`` writes (the kit compares fetched files with it): 1 MiB
    blocks, block ``i`` from ``random.Random(seed + i)``."""
    import random

    block = 1 << 20
    return b"".join(random.Random(seed + i).randbytes(min(block, size - i * block)) for i in range(-(-size // block)))


def checkpoint_job(size: int, fail: bool = False) -> None:
    """Write to ``$KUBEFLOW_TRAINER_OUTPUT_DIR``: rank 0 ``ckpt/model.bin`` (``checkpoint_bytes(size)``) and
    ``metrics.json``; every rank ``ranks/rank-<r>.txt``. With ``fail``, raise after writing."""
    import json
    import os
    import random

    out = os.environ["KUBEFLOW_TRAINER_OUTPUT_DIR"]
    rank = int(os.environ.get("RANK", "0"))
    os.makedirs(os.path.join(out, "ranks"), exist_ok=True)
    with open(os.path.join(out, "ranks", f"rank-{rank}.txt"), "w") as fh:
        fh.write(f"rank {rank}\n")
    if rank == 0:
        os.makedirs(os.path.join(out, "ckpt"), exist_ok=True)
        with open(os.path.join(out, "ckpt", "model.bin"), "wb") as fh:
            block = 1 << 20  # written as checkpoint_bytes makes it, never whole in memory
            for i in range(-(-size // block)):
                fh.write(random.Random(14 + i).randbytes(min(block, size - i * block)))
        with open(os.path.join(out, "metrics.json"), "w") as fh:
            json.dump({"loss": 0.25, "failed": fail}, fh)
    print(f"OUTPUTS rank={rank} dir={out}", flush=True)
    if fail:
        raise RuntimeError("checkpoint_job asked to fail after writing its outputs")


def data_dir_job(variable: str) -> None:
    """Print the ``tree_job`` digest of the data directory ``variable`` names, then whether the job can write
    into it (``DATADIR writable`` / ``DATADIR read-only``); a file it managed to write is removed again.
    Self-contained (it ships by source)."""
    import hashlib
    import os

    root = os.environ.get(variable, "")
    paths = sorted(os.path.relpath(os.path.join(d, f), root) for d, _dirs, files in os.walk(root) for f in files)
    digest = hashlib.sha256()
    for rel in paths:
        digest.update(rel.encode() + b"\0")
        with open(os.path.join(root, rel), "rb") as fh:
            digest.update(fh.read())
    print(f"TREE {variable} files={len(paths)} sha256={digest.hexdigest()}", flush=True)
    probe = os.path.join(root, ".kft-write-probe")
    try:
        with open(probe, "w") as fh:
            fh.write("x")
    except OSError as exc:
        print(f"DATADIR read-only ({exc.__class__.__name__})", flush=True)
    else:
        os.remove(probe)
        print("DATADIR writable", flush=True)


WORKSPACE_MODULES = {
    "__init__.py": "",
    "model.py": "SCALE = 6\n\n\ndef scaled(value):\n    return value * SCALE\n",
    "train.py": (
        "import os\n\n"
        "from {package}.model import scaled\n\n"
        "BASE = 7\n\n\n"
        "def run(label):\n"
        "    with open('configs/base.yaml') as fh:\n"
        "        lr = fh.read().split(':')[1].strip()\n"
        "    print(f\"WORKSPACE rank={{os.environ.get('RANK')}} value={{scaled(BASE)}} label={{label}} lr={{lr}} \"\n"
        "          f\"data={{os.path.exists('data')}} big={{os.path.exists('big.bin')}} \"\n"
        "          f\"git={{os.path.exists('.git')}}\", flush=True)\n"
    ),
}
"""The kit's project: a package of two modules; ``run`` uses a module constant and a helper of the other module."""


def make_workspace_project(root: str, package: str) -> Callable[..., Any]:
    """Write the kit's project under ``root`` (package ``package``, ``configs/base.yaml``, a ``.gitignore``d
    ``data/`` and ``big.bin``, a ``.git`` folder), import it, and return its ``run`` function."""
    import importlib
    import os
    import sys

    files = {f"{package}/{name}": text.format(package=package) for name, text in WORKSPACE_MODULES.items()}
    files.update({"configs/base.yaml": "lr: 0.25\n", ".gitignore": "data/\n*.bin\n", "data/rows.csv": "1,2\n"})
    files[".git/HEAD"] = "ref: refs/heads/main\n"
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
    with open(os.path.join(root, "big.bin"), "wb") as fh:
        fh.write(b"\0" * (4 * 1024 * 1024))
    sys.path.insert(0, root)
    try:
        run: Callable[..., Any] = importlib.import_module(f"{package}.train").run
        return run
    finally:
        sys.path.remove(root)


def forget_workspace_project(package: str) -> None:
    """Drop the kit project's modules from ``sys.modules``."""
    import sys

    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]


def node1_fails_node0_sleeps(seconds: float = 120) -> None:
    """Node 1 exits 1 after 4 s (long enough for the kit to have seen node 0 run, also where nodes start in a
    fraction of a second); node 0 sleeps (the kit checks that it is stopped without any client)."""
    import os
    import time

    rank = next(
        os.environ[k] for k in ("KUBEFLOW_TRAINER_NODE_RANK", "PET_NODE_RANK", "GROUP_RANK", "RANK") if k in os.environ
    )
    if rank == "1":
        time.sleep(4)
        print("NODE1 failing now", flush=True)
        raise SystemExit(1)
    print("NODE0 sleeping", flush=True)
    time.sleep(seconds)


def node1_fails_once() -> None:
    """Node 1 exits 3 the first time it runs (a marker file in its temporary directory remembers it), then
    succeeds; node 0 succeeds. With restarts the job completes after one restart of node 1."""
    import os
    import socket
    import tempfile

    rank = next(
        os.environ[k] for k in ("KUBEFLOW_TRAINER_NODE_RANK", "PET_NODE_RANK", "GROUP_RANK", "RANK") if k in os.environ
    )
    job = os.environ.get("KUBEFLOW_TRAINER_JOB_NAME") or socket.gethostname()
    marker = os.path.join(tempfile.gettempdir(), f"kft-kit-once-{job}")
    if rank == "1" and not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write("failed once\n")
        print("NODE1 failing once", flush=True)
        raise SystemExit(3)
    print(f"DONE node {rank}", flush=True)
