"""Training functions of the fault table's jobs (shipped by source: imports go inside)."""

from __future__ import annotations


def sleeper(seconds: float) -> None:
    """Print UP (with the rank) and sleep."""
    import os
    import time

    print("UP", os.environ.get("RANK", "0"), flush=True)
    time.sleep(seconds)
    print("DONE", flush=True)


def hog(megabytes: int) -> None:
    """Allocate (and touch) memory 16 MiB at a time up to ``megabytes``: killed first under a lower limit."""
    held = []
    for _ in range(megabytes // 16):
        held.append(bytearray(16 * 1024 * 1024))
    print("ALLOCATED", len(held) * 16, flush=True)


def quick(tag: str) -> None:
    """Print DONE and the tag, and stay half a second (long enough for a process-table sampler to see it run:
    a hot-started local job takes about 0.2 s)."""
    import time

    print("DONE", tag, flush=True)
    time.sleep(0.5)


def filler(megabytes: int) -> None:
    """Write ``megabytes`` into the job's workspace (beside its dataset directory), then print WROTE."""
    import os

    workspace = os.path.dirname(os.environ.get("KUBEFLOW_TRAINER_DATASET_DIR", os.path.join(os.getcwd(), "x")))
    print("WRITING INTO", workspace, flush=True)
    with open(os.path.join(workspace, "big.bin"), "wb") as fh:
        for _ in range(megabytes):
            fh.write(b"\1" * (1024 * 1024))
    print("WROTE", megabytes, flush=True)
