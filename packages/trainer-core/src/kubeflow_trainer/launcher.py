"""Runs inside each node container before the trainer: places the user's workspace, installs
``packages_to_install``, then execs the node's command. Standard library only; shipped as a file into the
job's workspace (never a shell string).

Usage in the container: ``python3 /workspace/.kft/launch.py <argv...>`` with ``KFT_PACKAGES`` (JSON list of
requirements) and ``KFT_PIP_ARGS`` (JSON list of pip flags, e.g. the job's index URLs).

Workspace: ``KFT_WORKSPACE_SRC`` (a directory: the container engines' content-addressed volume) or
``KFT_WORKSPACE_ARCHIVE`` (a tar, gzip or not: the Kubernetes ConfigMap) is placed into ``KFT_WORKSPACE_DIR``
(relative to this file's directory when not absolute), once per job and digest (``KFT_WORKSPACE_DIGEST``)
even when several nodes share the directory, and that directory becomes the working directory.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

PIP_FAILED = 97
TERMINATION_LOG = "/dev/termination-log"


def record_termination(text: str) -> None:
    """Append ``text`` to the Kubernetes termination message, when the container has one (the backend shows
    it as the failed step's message; ``KFT_TERMINATION_LOG`` names another file, for tests)."""
    path = os.environ.get("KFT_TERMINATION_LOG", TERMINATION_LOG)
    if os.path.isfile(path):
        try:
            with open(path, "a") as fh:
                fh.write(text[:2000] + "\n")
        except OSError:
            pass


WORKSPACE_FAILED = 96
COMPLETE_MARKER = ".kft-complete"
"""Last member of a workspace upload: its presence means the upload finished."""


def _extract(archive: str, target: str) -> None:
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            name = member.name
            if name.startswith("/") or ".." in name.split("/") or not (member.isfile() or member.isdir()):
                raise ValueError(f"refusing workspace archive member {name!r}")
            members.append(member)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.10.12
            tar.extractall(target, members=members)


def _copy(source: str, target: str) -> None:
    marker = os.path.join(source, COMPLETE_MARKER)
    digest = os.environ.get("KFT_WORKSPACE_DIGEST", "")
    # Another submit of the same content may still be uploading it: wait for its marker, up to a limit.
    deadline = time.monotonic() + float(os.environ.get("KFT_WORKSPACE_WAIT", "120"))
    while True:
        try:
            with open(marker) as fh:
                complete = fh.read().strip() == digest
        except OSError:
            complete = False
        if complete or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if not complete:
        remedy = os.environ.get("KFT_WORKSPACE_REMEDY", "remove it and submit again")
        raise ValueError(f"the workspace in {source} is incomplete (an upload was cut off); {remedy}")
    for directory, _dirs, files in os.walk(source):
        rel = os.path.relpath(directory, source)
        dest = target if rel == "." else os.path.join(target, rel)
        os.makedirs(dest, exist_ok=True)
        for name in files:
            if rel == "." and name == COMPLETE_MARKER:
                continue
            shutil.copyfile(os.path.join(directory, name), os.path.join(dest, name))
            shutil.copymode(os.path.join(directory, name), os.path.join(dest, name))


def place_workspace() -> None:
    """Put the workspace in place (once per digest, under a lock) and make it the working directory."""
    source = os.environ.get("KFT_WORKSPACE_SRC")
    archive = os.environ.get("KFT_WORKSPACE_ARCHIVE")
    if not source and not archive:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    target = os.path.join(here, os.environ.get("KFT_WORKSPACE_DIR") or os.getcwd())
    state = os.path.join(target, ".kft")
    os.makedirs(state, exist_ok=True)
    done = os.path.join(state, "workspace-" + os.environ.get("KFT_WORKSPACE_DIGEST", "unknown") + ".done")
    import fcntl

    with open(os.path.join(state, "workspace.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(done):
            if source:
                _copy(source, target)
            else:
                _extract(str(archive), target)
            open(done, "w").close()
    os.chdir(target)


def main(argv: "list[str]") -> int:
    try:
        place_workspace()
    except (OSError, ValueError, tarfile.TarError) as exc:
        print(f"[kubeflow-trainer] could not place the workspace: {exc}", flush=True)
        return WORKSPACE_FAILED
    packages = json.loads(os.environ.get("KFT_PACKAGES") or "[]")
    if packages:
        pip_args = json.loads(os.environ.get("KFT_PIP_ARGS") or "[]")
        cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar=off"]
        cmd += [*pip_args, *packages]  # pip's lines (Collecting, Downloading...) tell the SDK how far it is
        print("[kubeflow-trainer] installing " + " ".join(packages), flush=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        errors = []
        for raw in proc.stdout or ():
            line = raw.decode(errors="replace")
            sys.stdout.write(line)  # the log keeps pip's whole output
            if line.startswith("ERROR:"):
                errors.append(line.strip())
        sys.stdout.flush()
        if proc.wait() != 0:
            print("[kubeflow-trainer] pip install failed; check packages_to_install / pip_index_urls", flush=True)
            record_termination("\n".join(errors[-3:]) or "pip install failed")
            return PIP_FAILED
        print("[kubeflow-trainer] packages installed", flush=True)
    if not argv:
        print("[kubeflow-trainer] no command to run", flush=True)
        return 2
    os.execvp(argv[0], argv)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
