"""How soon a client learns that a job failed: a 2-node job whose node-1 exits 3 s after it starts (node-0
would sleep 300 s), timed from node-1 printing its failure to ``wait_for_job_status`` raising
``JobFailedError``, for the polling intervals a user picks (the default 2 s, and 0.2 s).

    python benchmarks/failure_lag.py [--backends local docker podman] [--runs 3]

Docker and Podman need the engines and the test image (scripts/containers/); the image is
``KFT_TEST_IMAGE`` or the suite's default. The test suite checks the behaviour with a generous bound; the
figure is printed here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from kubeflow_trainer import CustomTrainer, JobFailedError, TrainerClient

TEST_IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")


def rank1_fails() -> None:
    import os
    import time

    if os.environ.get("PET_NODE_RANK") == "1":
        time.sleep(3)
        print(f"FAILING-AT {time.time()}", flush=True)
        raise SystemExit(3)
    time.sleep(300)


def client_for(backend: str, state: str) -> TrainerClient:
    if backend == "local":
        from kubeflow_trainer_local import LocalProcessBackendConfig

        return TrainerClient(LocalProcessBackendConfig(state_dir=state))
    if backend == "docker":
        from kubeflow_trainer_docker import DockerBackendConfig

        return TrainerClient(DockerBackendConfig(image=TEST_IMAGE, pull_policy="Never", stop_timeout=2))
    from kubeflow_trainer_podman import PodmanBackendConfig

    return TrainerClient(PodmanBackendConfig(image=TEST_IMAGE, pull_policy="Never", stop_timeout=2))


def lag(client: TrainerClient, polling_interval: float) -> float:
    name = client.train(trainer=CustomTrainer(func=rank1_fails, num_nodes=2))
    try:
        client.wait_for_job_status(name, {"Running"}, timeout=600, polling_interval=0.1)
        try:
            client.wait_for_job_status(name, timeout=600, polling_interval=polling_interval)
        except JobFailedError:
            raised = time.time()
        else:
            raise SystemExit(f"job {name} completed; it should have failed")
        failed = [float(x.split()[1]) for x in client.get_job_logs(name, step="node-1") if x.startswith("FAILING-AT")]
        if not failed:
            raise SystemExit(f"job {name}: node-1 printed no FAILING-AT line")
        return raised - failed[0]
    finally:
        client.delete_job(name)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", nargs="+", default=["local"], choices=["local", "docker", "podman"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"node-1 fails -> wait_for_job_status raises; seconds, median of {args.runs} (runs)\n")
    print(f"{'backend':8s} {'polling 2 s':>24s} {'polling 0.2 s':>24s}")
    with tempfile.TemporaryDirectory() as state:
        for backend in args.backends:
            client = client_for(backend, state)
            cells = []
            for interval in (2.0, 0.2):
                runs = [lag(client, interval) for _ in range(args.runs)]
                cells.append(f"{statistics.median(runs):6.2f} ({' '.join(f'{r:.2f}' for r in runs)})")
            print(f"{backend:8s} {cells[0]:>24s} {cells[1]:>24s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
