"""Kubernetes backend: API calls and wall time of ``list_jobs`` with 1, 10 and 100 TrainJobs, and
``train()`` -> Created latency, against the test control plane (scripts/k8s/; started and stopped here).

    python benchmarks/k8s_list_jobs.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kubeflow_trainer import CustomTrainer, TrainerClient

K8S = Path(__file__).resolve().parents[1] / "scripts" / "k8s"


def trivial() -> None:
    print("hello")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from kubernetes import client as k8s
    from kubernetes import config

    from kubeflow_trainer_k8s import KubernetesBackendConfig

    run_dir = Path(tempfile.mkdtemp(prefix="kft-k8s-bench-")) / "run"
    env = dict(os.environ, KFT_K8S_RUN_DIR=str(run_dir))
    subprocess.run(["bash", str(K8S / "build.sh")], env=env, check=True, capture_output=True)
    subprocess.run(["bash", str(K8S / "up.sh")], env=env, check=False, capture_output=True)
    try:
        status = json.loads((run_dir / "components.json").read_text())
        ns = f"bench-{uuid.uuid4().hex[:6]}"
        k8s.CoreV1Api(config.new_client_from_config(status["kubeconfig"])).create_namespace({"metadata": {"name": ns}})
        client = TrainerClient(KubernetesBackendConfig(config_file=status["kubeconfig"], namespace=ns))
        backend = client.backend
        created: list[float] = []
        rows = []
        for target in (1, 10, 100):
            while len(client.list_jobs()) < target:
                t0 = time.perf_counter()
                name = client.train(trainer=CustomTrainer(func=trivial))
                if len(created) < args.runs * 2:
                    while client.get_job(name).status != "Created":  # the object exists and reads back
                        time.sleep(0.01)
                    created.append(time.perf_counter() - t0)
            times, calls = [], []
            for _ in range(args.runs):
                before = backend.api_calls  # type: ignore[attr-defined]
                t0 = time.perf_counter()
                jobs = client.list_jobs()
                times.append(time.perf_counter() - t0)
                calls.append(backend.api_calls - before)  # type: ignore[attr-defined]
                assert len(jobs) == target
            rows.append((target, statistics.median(calls), statistics.median(times) * 1000))
        print(f"{'TrainJobs':>10s} {'API calls':>10s} {'list_jobs ms (median)':>22s}")
        for target, calls_med, ms in rows:
            print(f"{target:10d} {calls_med:10.0f} {ms:22.1f}")
        print(
            f"\ntrain() -> Created (object created and read back): median {statistics.median(created) * 1000:.1f} ms "
            f"over {len(created)} jobs"
        )
        print("(upstream 0.5.0 does one get_runtime per job in list_jobs: 1 + N calls)")
    finally:
        subprocess.run(["bash", str(K8S / "down.sh")], env=env, check=False, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
