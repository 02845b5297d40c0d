"""Workspaces: what shipping a project costs, first time and unchanged.

A 1-node job whose function (defined in the project's package, so it runs by reference) prints one line, on
each backend, four ways, measured in one process:
  - no workspace (the baseline: only the function ships);
  - a 1 MiB project, first submit (new content: snapshot, cache copy / volume upload / ConfigMap);
  - a 50 MiB project, first submit;
  - the 50 MiB project resubmitted unchanged (the cache entry / volume is reused).
For each: ``train()`` (submit) time and time from ``train()`` to Complete (polled every 50 ms). Every
"first submit" uses fresh random content, so nothing is reused from an earlier run.

    python benchmarks/workspace.py [--backends local docker podman] [--runs 3]

Targets (issue 14): unchanged resubmit <= 0.2 s over no workspace; a 50 MiB first submit <= 2 s over no
workspace on local/docker/podman. Kubernetes: only the submit side, against ``--kubeconfig`` if given (the
ConfigMap limit is 1 MB compressed, so the 50 MiB rows are refused there by design).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kubeflow_trainer import CustomTrainer, Name, TrainerClient

IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
PODMAN_URL = "unix:///run/podman/podman.sock"
VOLUMES: set[str] = set()
"""Workspace volumes the container runs created (removed at the end: each holds fresh random data)."""
MODULE = "def run():\n    print('BENCH ok', flush=True)\n"


def client_for(backend: str, tmp: str) -> TrainerClient:
    if backend == "local":
        from kubeflow_trainer_local import LocalProcessBackendConfig

        return TrainerClient(
            LocalProcessBackendConfig(state_dir=f"{tmp}/state", workspace_cache_dir=f"{tmp}/workspaces")
        )
    if backend == "docker":
        from kubeflow_trainer_docker import DockerBackendConfig

        return TrainerClient(DockerBackendConfig(image=IMAGE, pull_policy="Never"))
    from kubeflow_trainer_podman import PodmanBackendConfig

    return TrainerClient(PodmanBackendConfig(image=IMAGE, pull_policy="Never", host=PODMAN_URL))


def make_project(root: Path, mib: int) -> object:
    """A package ``benchpkg_<id>`` with the job's function and ``mib`` MiB of random data files (1 MiB each)."""
    package = f"benchpkg_{uuid.uuid4().hex[:8]}"
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "job.py").write_text(MODULE)
    (root / "assets").mkdir()
    for i in range(mib):
        (root / "assets" / f"blob{i:03d}.bin").write_bytes(os.urandom(1024 * 1024))
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"{package}.job").run
    finally:
        sys.path.remove(str(root))


def run_once(client: TrainerClient, trainer: CustomTrainer) -> tuple[float, float]:
    name = f"bench-ws-{uuid.uuid4().hex[:6]}"
    start = time.perf_counter()
    client.train(trainer=trainer, options=[Name(name)])
    submitted = time.perf_counter() - start
    client.wait_for_job_status(name, timeout=900, polling_interval=0.05)
    total = time.perf_counter() - start
    client.delete_job(name)
    if trainer.workspace is not None and client.backend_name != "local":  # after timing: dry_run reads the files
        VOLUMES.add(client.dry_run(trainer=trainer).request.workspace.volume.name)
    return submitted, total


def bench(backend: str, runs: int) -> dict[str, list[tuple[float, float]]]:
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in ("none", "1MiB first", "50MiB first", "50MiB again")}
    with tempfile.TemporaryDirectory(prefix="kft-bench-ws-") as tmp:
        client = client_for(backend, tmp)
        warm = make_project(Path(tmp) / "warm", 0)
        run_once(client, CustomTrainer(func=warm))  # warms the environment / image cache
        for i in range(runs):
            rows["none"].append(run_once(client, CustomTrainer(func=warm)))
            small = make_project(Path(tmp) / f"p1-{i}", 1)
            rows["1MiB first"].append(run_once(client, CustomTrainer(func=small, workspace=str(Path(tmp) / f"p1-{i}"))))
            big_root = Path(tmp) / f"p50-{i}"
            big = make_project(big_root, 50)
            rows["50MiB first"].append(run_once(client, CustomTrainer(func=big, workspace=str(big_root))))
            rows["50MiB again"].append(run_once(client, CustomTrainer(func=big, workspace=str(big_root))))
        for volume in VOLUMES:
            client.backend.engine.remove_volume(volume)
        VOLUMES.clear()
        client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["local", "docker", "podman"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for backend in args.backends:
        rows = bench(backend, args.runs)
        base_submit = statistics.median(s for s, _ in rows["none"])
        base_total = statistics.median(t for _, t in rows["none"])
        print(f"\n{backend} (medians of {args.runs}; delta = over 'none' in the same run)")
        print(f"{'case':<13} {'submit s':>9} {'delta':>7} {'to Complete s':>14} {'delta':>7}   runs (to Complete)")
        for case, values in rows.items():
            submit = statistics.median(s for s, _ in values)
            total = statistics.median(t for _, t in values)
            runs = " ".join(f"{t:.2f}" for _, t in values)
            print(
                f"{case:<13} {submit:>9.3f} {submit - base_submit:>+7.3f} {total:>14.2f} {total - base_total:>+7.2f}"
                f"   {runs}"
            )


if __name__ == "__main__":
    main()
