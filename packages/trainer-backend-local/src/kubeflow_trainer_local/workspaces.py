"""The local backend's workspace cache: one copy of each workspace content, hard-linked into each job.

``<workspace_cache_dir>/<digest>/`` holds the files of one workspace content (copied once from the user's
project, each checked against its SHA-256 while copied) and ``.kft-manifest.json`` (size and modification
time of each copy). A job's working directory gets hard links to them, so an unchanged resubmit copies
nothing. Should a job rewrite a linked file in place, the manifest no longer matches and the next job that
ships the same content rebuilds the entry instead of inheriting the change.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from kubeflow_trainer.workspace import WorkspaceSnapshot

MANIFEST = ".kft-manifest.json"


def _manifest_ok(entry: str, snapshot: WorkspaceSnapshot) -> bool:
    try:
        with open(os.path.join(entry, MANIFEST)) as fh:
            recorded = json.load(fh)
    except (OSError, ValueError):
        return False
    if set(recorded) != {f.path for f in snapshot.files}:
        return False
    for rel, (size, mtime_ns) in recorded.items():
        try:
            st = os.stat(os.path.join(entry, rel), follow_symlinks=False)
        except OSError:
            return False
        if st.st_size != size or st.st_mtime_ns != mtime_ns:
            return False
    return True


def ensure_cached(cache_dir: str, snapshot: WorkspaceSnapshot) -> str:
    """The cache entry of ``snapshot`` (built when missing or tampered with); returns its directory."""
    entry = os.path.join(cache_dir, snapshot.digest)
    if _manifest_ok(entry, snapshot):
        return entry
    os.makedirs(cache_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-", dir=cache_dir)
    try:
        recorded: dict[str, tuple[int, int]] = {}
        for file in snapshot.files:
            dest = os.path.join(staging, *file.path.split("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as fh:
                fh.write(snapshot.read(file))
            os.chmod(dest, 0o755 if file.executable else 0o644)
            st = os.stat(dest)
            recorded[file.path] = (st.st_size, st.st_mtime_ns)
        with open(os.path.join(staging, MANIFEST), "w") as fh:
            json.dump(recorded, fh)
        if os.path.exists(entry):
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.rename(staging, entry)
        except OSError:  # a concurrent submit put the same content in place first
            if not _manifest_ok(entry, snapshot):
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return entry


def link_into(entry: str, snapshot: WorkspaceSnapshot, target: str) -> None:
    """Hard-link the cached files into ``target`` (copy where links are not possible)."""
    for file in snapshot.files:
        source = os.path.join(entry, *file.path.split("/"))
        dest = os.path.join(target, *file.path.split("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            os.link(source, dest)
        except OSError:
            shutil.copy2(source, dest)
