"""Training functions used by the conformance kit. They need only the standard library (torch where noted).

They live in a module (not in test bodies) so that their source can be shipped like any user function.
"""


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
