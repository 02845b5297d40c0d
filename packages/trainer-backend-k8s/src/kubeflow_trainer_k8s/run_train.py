"""Runs in each pod, shipped by the SDK next to the job's ``train.py`` (standard library only): runs the script as
``__main__``; when it raises, the exception (type and text) is appended to the container's termination message
file, which the kubelet copies into the pod's status. The backend shows it as the failed step's message, so
the user's error reaches ``wait_for_job_status`` without reading logs.

It also creates ``$KUBEFLOW_TRAINER_OUTPUT_DIR`` before the script runs and, when ``$KFT_OUTPUT_URI`` is set
(the ``OutputStorage`` option), uploads that directory there with boto3 when the script ends, completed or
failed (one process per node: local rank 0).

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


def upload_outputs(directory: str, uri: str) -> int:
    """Upload every regular file under ``directory`` to ``uri`` (``s3://bucket/prefix``), keys relative to it;
    symbolic links are not followed. Returns the number of files uploaded."""
    import boto3  # the trainer image's (OutputStorage needs it); imported only when outputs are uploaded

    bucket, _, prefix = uri[len("s3://") :].partition("/")
    s3 = boto3.client("s3")
    count = 0
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            rel = os.path.relpath(path, directory).replace(os.sep, "/")
            s3.upload_file(path, bucket, f"{prefix}/{rel}" if prefix else rel)
            count += 1
    return count


def finish_outputs() -> None:
    """Upload the output directory when ``$KFT_OUTPUT_URI`` asks for it (each node's local rank 0 only)."""
    uri = os.environ.get("KFT_OUTPUT_URI")
    directory = os.environ.get("KUBEFLOW_TRAINER_OUTPUT_DIR")
    if not uri or not directory or os.environ.get("LOCAL_RANK", "0") != "0":
        return
    try:
        count = upload_outputs(directory, uri)
    except Exception as exc:  # the job's own result stands; say plainly why the outputs are not there
        print(
            f"[kubeflow-trainer] error: could not upload {directory} to {uri}: {type(exc).__name__}: {exc}", flush=True
        )
        record(RuntimeError(f"outputs not uploaded to {uri}: {type(exc).__name__}: {exc}"))
        return
    print(f"[kubeflow-trainer] uploaded {count} output file(s) to {uri}", flush=True)


def main() -> None:
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    if os.environ.get("KUBEFLOW_TRAINER_OUTPUT_DIR"):
        os.makedirs(os.environ["KUBEFLOW_TRAINER_OUTPUT_DIR"], exist_ok=True)
    try:
        runpy.run_path(script, run_name="__main__")
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        if not getattr(exc, "_kft_recorded", False):  # the generated train.py records its function's errors
            record(exc)
        raise
    finally:
        finish_outputs()


if __name__ == "__main__":
    main()
