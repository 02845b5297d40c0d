"""Container backends vs upstream ``kubeflow==0.5.0``'s ContainerBackend and vs the plain-CLI floor.

Same image for all (the locally built test image), same trivial torch job (print a line, multiply two small
tensors), 1 node and 2 nodes. Time from ``train()`` to Complete, jobs polled every 50 ms. The floor is
``docker run`` / ``podman run`` of ``torchrun`` with the same script on a fresh network, until every node
exited. Rows: this SDK on Docker and Podman, upstream on Docker and Podman, the two floors.

    python benchmarks/docker_vs_upstream.py --upstream-python .bench/upstream/bin/python [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid

from kubeflow_trainer import CustomTrainer, TrainerClient
from kubeflow_trainer.shipping import build_script

IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
PODMAN_URL = "unix:///run/podman/podman.sock"
CLI = {"docker": ["docker"], "podman": ["podman", "--remote", "--url", PODMAN_URL]}


def trivial() -> None:
    import torch

    print("HELLO", float((torch.ones(3, 3) @ torch.ones(3, 3)).sum()), flush=True)


UPSTREAM = textwrap.dedent(
    """
    import json, sys, time
    from kubeflow.trainer import ContainerBackendConfig, CustomTrainer, TrainerClient

    def trivial():
        import torch
        print("HELLO", float((torch.ones(3, 3) @ torch.ones(3, 3)).sum()), flush=True)

    engine, nodes, image = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cfg = ContainerBackendConfig(pull_policy="Never", container_runtime=engine,
                                 container_host=None if engine == "docker" else "unix:///run/podman/podman.sock")
    client = TrainerClient(backend_config=cfg)
    t0 = time.perf_counter()
    name = client.train(trainer=CustomTrainer(func=trivial, image=image, num_nodes=nodes))
    while True:
        status = client.get_job(name).status
        if status in ("Complete", "Failed"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    client.delete_job(name)
    print(json.dumps({"seconds": elapsed, "status": status}))
    """
)


def ours(engine: str, nodes: int) -> float:
    if engine == "docker":
        from kubeflow_trainer_docker import DockerBackendConfig

        config = DockerBackendConfig(image=IMAGE, pull_policy="Never")
    else:
        from kubeflow_trainer_podman import PodmanBackendConfig

        config = PodmanBackendConfig(image=IMAGE, pull_policy="Never", host=PODMAN_URL)
    client = TrainerClient(config)
    t0 = time.perf_counter()
    name = client.train(trainer=CustomTrainer(func=trivial, num_nodes=nodes))
    while (status := client.get_job(name).status) not in ("Complete", "Failed"):
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    client.delete_job(name)
    if status != "Complete":
        raise SystemExit(f"{engine} job {name} {status}")
    return elapsed


def floor(engine: str, nodes: int, script_dir: str) -> float:
    net = f"kft-floor-{uuid.uuid4().hex[:8]}"
    cli = CLI[engine]
    subprocess.run([*cli, "network", "create", net], check=True, capture_output=True)
    names = [f"{net}-n{r}" for r in range(nodes)]
    try:
        t0 = time.perf_counter()
        for rank, name in enumerate(names):
            subprocess.run(
                [
                    *cli,
                    "run",
                    "-d",
                    "--name",
                    name,
                    "--hostname",
                    name,
                    "--network",
                    net,
                    "-v",
                    f"{script_dir}:/work:ro",
                    "-w",
                    "/work",
                    IMAGE,
                    "torchrun",
                    f"--nnodes={nodes}",
                    "--nproc-per-node=1",
                    f"--node-rank={rank}",
                    f"--master-addr={names[0]}",
                    "--master-port=29500",
                    "train.py",
                ],
                check=True,
                capture_output=True,
            )
        for name in names:
            code = subprocess.run([*cli, "wait", name], check=True, capture_output=True, text=True).stdout.strip()
            if code != "0":
                raise SystemExit(f"floor {engine} node {name} exited {code}")
        return time.perf_counter() - t0
    finally:
        for name in names:
            subprocess.run([*cli, "rm", "-f", name], capture_output=True, check=False)
        subprocess.run([*cli, "network", "rm", net], capture_output=True, check=False)


def upstream(python: str, script: str, engine: str, nodes: int) -> float | None:
    out = subprocess.run(
        [python, script, engine, str(nodes), IMAGE],
        capture_output=True,
        text=True,
        check=False,
        cwd=os.path.dirname(script),
    )
    try:
        result = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(f"upstream {engine} {nodes}-node failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return float(result["seconds"]) if result["status"] == "Complete" else None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--upstream-python", default=None)
    args = parser.parse_args()
    script_dir = tempfile.mkdtemp(prefix="kft-floor-")
    with open(os.path.join(script_dir, "train.py"), "w") as fh:
        fh.write(build_script(trivial, None))
    os.chmod(script_dir, 0o755)
    up_script = os.path.join(tempfile.mkdtemp(prefix="kft-up-"), "upstream_job.py")
    with open(up_script, "w") as fh:
        fh.write(UPSTREAM)
    table: dict[str, dict[int, list[float]]] = {}
    for nodes in (1, 2):
        for _ in range(args.runs):  # interleaved, so machine load hits every row alike
            for engine in ("docker", "podman"):
                table.setdefault(f"this SDK, {engine}", {}).setdefault(nodes, []).append(ours(engine, nodes))
                table.setdefault(f"floor: plain `{engine} run` torchrun", {}).setdefault(nodes, []).append(
                    floor(engine, nodes, script_dir)
                )
                if args.upstream_python:
                    value = upstream(os.path.abspath(args.upstream_python), up_script, engine, nodes)
                    if value is not None:
                        table.setdefault(f"upstream 0.5.0 ContainerBackend, {engine}", {}).setdefault(nodes, []).append(
                            value
                        )

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    print(f"image {IMAGE}; runs per cell: {args.runs}; train() -> Complete, medians in seconds\n")
    print(f"{'':45s} {'1 node':>8s} {'2 nodes':>8s}   runs (1 node | 2 nodes)")
    for label, cells in table.items():
        runs = " | ".join(" ".join(f"{v:.2f}" for v in cells.get(n, [])) for n in (1, 2))
        print(f"{label:45s} {med(cells.get(1, [])):8.2f} {med(cells.get(2, [])):8.2f}   {runs}")
    print()
    for engine in ("docker", "podman"):
        for nodes in (1, 2):
            o = med(table[f"this SDK, {engine}"][nodes])
            f = med(table[f"floor: plain `{engine} run` torchrun"][nodes])
            u = med(table.get(f"upstream 0.5.0 ContainerBackend, {engine}", {}).get(nodes, []))
            print(
                f"{engine} {nodes}-node: {o / f:.2f}x the floor (target <= 1.3), upstream/ours {u / o:.2f}x "
                "(target > 1)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
