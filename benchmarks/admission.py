"""Admission under load: N one-node jobs submitted at once with a limit of L running jobs, on the local backend
and Docker (Podman with --backends). Prints, per backend, the submission time, the wall time until all ended,
the peak number of jobs seen running at once (from the process table) and whether they started in
submission order; side by side, the same N jobs with no limit (L = N) where --compare is given.

Usage: python benchmarks/admission.py [--jobs 50] [--limit 2] [--backends local docker] [--compare]
(Docker/Podman: the torch test image of scripts/containers/build-test-image.sh, env from env.sh.)
"""

from __future__ import annotations

import argparse
import os
import tempfile

from kubeflow_trainer import CustomTrainer, TrainerClient
from kubeflow_trainer.testing.load import burst


def short_job() -> None:
    print("short job", flush=True)


def config(backend: str, limit: int, tmp: str):
    image = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
    if backend == "local":
        from kubeflow_trainer_local import LocalProcessBackendConfig

        return LocalProcessBackendConfig(state_dir=os.path.join(tmp, "state"), max_running_jobs=limit)
    if backend == "docker":
        from kubeflow_trainer_docker import DockerBackendConfig

        return DockerBackendConfig(
            image=image, pull_policy="Never", max_running_jobs=limit, queue_dir=os.path.join(tmp, "q")
        )
    from kubeflow_trainer_podman import PodmanBackendConfig

    return PodmanBackendConfig(
        image=image, pull_policy="Never", max_running_jobs=limit, queue_dir=os.path.join(tmp, "q")
    )


def run(backend: str, jobs: int, limit: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, TrainerClient(config(backend, limit, tmp)) as client:
        names: list[str] = []
        try:
            r = burst(client, CustomTrainer(func=short_job), count=jobs, timeout=3600, names_out=names, prefix="bench")
        finally:
            for name in names:
                try:
                    client.delete_job(name)
                except Exception:
                    pass
    done = sum(1 for s in r.statuses.values() if s == "Complete")
    print(
        f"{backend:7s} jobs={jobs:3d} limit={limit:3d}  submit {r.submit_seconds:6.1f}s  wall {r.wall_seconds:6.1f}s  "
        f"peak running {r.peak:3d}  complete {done}/{jobs}  order kept {r.start_order_kept()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=["local", "docker"])
    parser.add_argument("--compare", action="store_true", help="also run with no effective limit (limit = jobs)")
    args = parser.parse_args()
    for backend in args.backends:
        run(backend, args.jobs, args.limit)
        if args.compare:
            run(backend, args.jobs, args.jobs)


if __name__ == "__main__":
    main()
