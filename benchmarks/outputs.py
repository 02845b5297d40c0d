"""Fetching a job's outputs: ``get_job_outputs`` for one large checkpoint, time and the fetching process's peak
memory growth, next to the floor in the same run (``cp -r`` of the job's output directory locally; the
engine's own ``docker cp`` / ``podman cp`` out of the exited node container).

    python benchmarks/outputs.py [--backends local docker podman] [--mib 256] [--runs 3]

Each fetch runs in a fresh interpreter (as a user's new process would). Docker and Podman need the engines
and the test image (scripts/containers/); the image is ``KFT_TEST_IMAGE`` or the suite's default.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from kubeflow_trainer import CustomTrainer, Name, TrainerClient
from kubeflow_trainer.plan import random_job_name
from kubeflow_trainer.testing import jobs

TEST_IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
PODMAN_URL = "unix:///run/podman/podman.sock"

FETCH = """
import json, resource, sys, time, importlib
spec = json.loads(sys.argv[1])
config = getattr(importlib.import_module(spec["module"]), spec["cls"]).model_validate_json(spec["config"])
from kubeflow_trainer import TrainerClient
client = TrainerClient(backend_config=config)
client.get_job(spec["name"])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
client.get_job_outputs(spec["name"], spec["dest"])
seconds = time.perf_counter() - start
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"s": seconds, "peak_growth_mib": growth}))
"""


def config_for(backend: str, state: str) -> Any:
    if backend == "local":
        from kubeflow_trainer_local import LocalProcessBackendConfig

        return LocalProcessBackendConfig(state_dir=state)
    if backend == "docker":
        from kubeflow_trainer_docker import DockerBackendConfig

        return DockerBackendConfig(image=TEST_IMAGE, pull_policy="Never", stop_timeout=2)
    from kubeflow_trainer_podman import PodmanBackendConfig

    return PodmanBackendConfig(host=PODMAN_URL, image=TEST_IMAGE, pull_policy="Never", stop_timeout=2)


def sdk_fetch(config: Any, name: str, dest: str) -> dict[str, float]:
    spec = {
        "module": type(config).__module__,
        "cls": type(config).__name__,
        "config": config.model_dump_json(),
        "name": name,
        "dest": dest,
    }
    out = subprocess.run([sys.executable, "-c", FETCH, json.dumps(spec)], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def floor_fetch(backend: str, config: Any, name: str, dest: str) -> float:
    start = time.perf_counter()
    if backend == "local":
        shutil.copytree(os.path.join(config.state_dir, "jobs", name, "outputs"), dest)
    else:
        cli = ["docker"] if backend == "docker" else ["podman", "--remote", "--url", PODMAN_URL]
        subprocess.run([*cli, "cp", f"{name}-node-0:/kft-outputs", dest], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["local", "docker", "podman"])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    print(f"one {args.mib} MiB checkpoint; median of {args.runs} fetches each (fresh interpreter per SDK fetch)")
    print(f"{'backend':8} {'get_job_outputs s':>18} {'floor s':>8} {'peak growth MiB':>16}  floor")
    for backend in args.backends:
        with tempfile.TemporaryDirectory(prefix="kft-bench-out-") as tmp:
            config = config_for(backend, os.path.join(tmp, "state"))
            client = TrainerClient(backend_config=config)
            name = f"bench-out-{random_job_name()[:6]}"
            client.train(
                trainer=CustomTrainer(
                    func=jobs.checkpoint_job,
                    func_args={"size": size},
                    **({} if backend == "local" else {"image": TEST_IMAGE}),
                ),
                options=[Name(name)],
            )
            try:
                client.wait_for_job_status(name, timeout=900, polling_interval=0.5)
                sdk, floor, growth = [], [], []
                for run in range(args.runs):
                    got = sdk_fetch(config, name, os.path.join(tmp, f"sdk-{run}"))
                    sdk.append(got["s"])
                    growth.append(got["peak_growth_mib"])
                    floor.append(floor_fetch(backend, config, name, os.path.join(tmp, f"floor-{run}")))
                    shutil.rmtree(os.path.join(tmp, f"sdk-{run}"))
                    shutil.rmtree(os.path.join(tmp, f"floor-{run}"), ignore_errors=True)
                what = "cp -r" if backend == "local" else f"{backend} cp"
                print(
                    f"{backend:8} {statistics.median(sdk):18.2f} {statistics.median(floor):8.2f} "
                    f"{max(growth):16.1f}  {what}"
                )
            finally:
                client.delete_job(name)
                client.close()


if __name__ == "__main__":
    main()
