"""Runs in each pod, shipped by the SDK next to the job's ``train.py`` (standard library only): runs the script as
``__main__``; when it raises, the exception (type and text) is appended to the container's termination message
file, which the kubelet copies into the pod's status. The backend shows it as the failed step's message, so
the user's error reaches ``wait_for_job_status`` without reading logs.

Usage in the pod: ``torchrun run_train.py train.py [args...]`` (or ``python3 run_train.py train.py``).
"""

import os
import runpy
import sys

TERMINATION_LOG = "/dev/termination-log"
"""Kubernetes' default ``terminationMessagePath`` (the kubelet reads at most 4096 bytes of it)."""
LIMIT = 1000


def record(exc: BaseException) -> None:
    """Append ``[rank N: ]<Type>: <text>`` to the termination message file, if the container has one
    (``KFT_TERMINATION_LOG`` names another file, for tests)."""
    text = f"{type(exc).__name__}: {exc}"
    if os.environ.get("WORLD_SIZE", "1") != "1" and os.environ.get("RANK") is not None:
        text = f"rank {os.environ['RANK']}: {text}"
    path = os.environ.get("KFT_TERMINATION_LOG", TERMINATION_LOG)
    if not os.path.isfile(path):  # the kubelet mounts it into every container; never create one elsewhere
        return
    try:
        with open(path, "a") as fh:
            fh.write(text[:LIMIT].replace("\n", " ") + "\n")
    except OSError:  # not in a Kubernetes container, or a read-only path: the log still has the traceback
        pass


def main() -> None:
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    try:
        runpy.run_path(script, run_name="__main__")
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        record(exc)
        raise


if __name__ == "__main__":
    main()
