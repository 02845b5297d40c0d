"""Kubernetes on the real-kubelet tier vs Docker, same run: ``train()`` -> first log line and -> Complete.

The same trivial torch job (print a line, multiply two small tensors) with 1 and 2 nodes. On Kubernetes it
runs in the runtime's image, which the tier serves from the torch test image; on Docker in that image directly.
First line: ``get_job_logs(follow=True)`` started right after ``train()`` (retried until the pod has a log).
Complete: ``get_job`` polled every 50 ms. Starts the control plane and the node (scripts/k8s/) unless
``--kubeconfig`` names a running one; always stops what it started (node-down.sh restores the host).

    sudo python benchmarks/k8s_kubelet_latency.py [--runs 3] [--kubeconfig RUN_DIR/kubeconfig]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from kubeflow_trainer import CustomTrainer, JobNotFoundError, TrainerClient

K8S = Path(__file__).resolve().parents[1] / "scripts" / "k8s"
IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")


def trivial() -> None:
    import torch

    print("HELLO", float((torch.ones(3, 3) @ torch.ones(3, 3)).sum()), flush=True)


def first_line_watch(client: TrainerClient, name: str, t0: float, out: dict[str, float]) -> None:
    """Follow node-0's log from right after train(); record when the first line arrives."""
    while "first" not in out and time.perf_counter() - t0 < 300:
        try:
            for _ in client.get_job_logs(name, follow=True):
                out["first"] = time.perf_counter() - t0
                return
        except Exception:  # the pod may not exist or have started yet: retry
            pass
        time.sleep(0.05)


def measure(client: TrainerClient, nodes: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    name = client.train(trainer=CustomTrainer(func=trivial, num_nodes=nodes), options=[])
    seen: dict[str, float] = {}
    watcher = threading.Thread(target=first_line_watch, args=(client, name, t0, seen), daemon=True)
    watcher.start()
    while (status := client.get_job(name).status) not in ("Complete", "Failed"):
        time.sleep(0.05)
    complete = time.perf_counter() - t0
    watcher.join(60)
    try:
        client.delete_job(name)
    except JobNotFoundError:
        pass
    if status != "Complete":
        raise SystemExit(f"job {name} {status}")
    return seen.get("first", float("nan")), complete


def kubernetes_client(kubeconfig: str) -> tuple[TrainerClient, Any]:
    from kubernetes import client as k8s
    from kubernetes import config

    from kubeflow_trainer_k8s import KubernetesBackendConfig

    namespace = f"kft-bench-{uuid.uuid4().hex[:6]}"
    core = k8s.CoreV1Api(config.new_client_from_config(kubeconfig))
    core.create_namespace({"metadata": {"name": namespace}})
    return TrainerClient(KubernetesBackendConfig(config_file=kubeconfig, namespace=namespace)), (core, namespace)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kubeconfig", default=None, help="a running plane with its real node (else started here)")
    args = parser.parse_args()
    env = dict(os.environ)
    started = args.kubeconfig is None
    if started:
        env["KFT_K8S_RUN_DIR"] = os.path.join(tempfile.mkdtemp(prefix="kft-bench-"), "run")
        for script in ("node-build.sh", "up.sh", "node-up.sh"):
            t = time.perf_counter()
            done = subprocess.run(["bash", str(K8S / script)], env=env, capture_output=True, text=True, check=False)
            print(f"{script}: {time.perf_counter() - t:.1f}s (rc {done.returncode})", file=sys.stderr)
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                break
        kubeconfig = os.path.join(env["KFT_K8S_RUN_DIR"], "kubeconfig")
    else:
        kubeconfig = args.kubeconfig
    from kubeflow_trainer_docker import DockerBackendConfig

    clients: dict[str, TrainerClient] = {"docker": TrainerClient(DockerBackendConfig(image=IMAGE, pull_policy="Never"))}
    namespace: Any = None
    try:
        if not started or done.returncode == 0:
            clients["kubernetes (real kubelet)"], namespace = kubernetes_client(kubeconfig)
        else:
            raise SystemExit("the real-kubelet tier did not start; see the reason above")
        table: dict[str, dict[int, list[tuple[float, float]]]] = {}
        for nodes in (1, 2):
            for _ in range(args.runs):  # interleaved, so machine load hits every row alike
                for label, client in clients.items():
                    table.setdefault(label, {}).setdefault(nodes, []).append(measure(client, nodes))
        print(f"image {IMAGE}; runs per cell: {args.runs}; medians in seconds from train()\n")
        print(f"{'':28s} {'1 node: first line':>19s} {'Complete':>9s} {'2 nodes: first line':>20s} {'Complete':>9s}")
        for label, cells in table.items():
            row = []
            for n in (1, 2):
                runs = cells.get(n, [])
                row += [statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)]
            print(f"{label:28s} {row[0]:19.2f} {row[1]:9.2f} {row[2]:20.2f} {row[3]:9.2f}")
        print()
        for label, cells in table.items():
            for n in (1, 2):
                print(
                    f"{label} {n}-node runs (first, complete): " + " ".join(f"({a:.2f}, {b:.2f})" for a, b in cells[n])
                )
    finally:
        for client in clients.values():
            client.close()
        if namespace is not None:
            core, ns = namespace
            core.delete_namespace(ns)
        if started:
            for script in ("node-down.sh", "down.sh"):
                done = subprocess.run(["bash", str(K8S / script)], env=env, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    print(f"{script} failed: {done.stderr[-2000:]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
