"""Dataset and model initializers: what they add to a job, and what a cache saves.

A 1-node job whose function only lists its two directories, on each backend, three ways:
  - no initializers (the baseline);
  - S3 dataset (moto's S3 server, N objects) + HTTP model (one file), downloaded;
  - the same with ``cache=...`` after a first run stored it (the step copies from the cache).
Time from ``train()`` to Complete (polled every 50 ms) and the steps' own durations from their logs.

    python benchmarks/initializers.py [--backends local docker podman] [--runs 3] [--dataset-mib 64]
        [--model-mib 256]

Needs moto[server] and boto3 in this interpreter, and the test engines/image for docker and podman.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.servers import FileServer, S3Server, host_address

from kubeflow_trainer import (
    CustomTrainer,
    Initializer,
    Name,
    S3DatasetInitializer,
    TrainerClient,
    UrlModelInitializer,
)

IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
PODMAN_URL = "unix:///run/podman/podman.sock"
DONE = re.compile(r"done: (\d+) files, (\d+) bytes in ([0-9.]+)s")


def listing() -> None:
    import os

    for var in ("KUBEFLOW_TRAINER_DATASET_DIR", "KUBEFLOW_TRAINER_MODEL_DIR"):
        root = os.environ.get(var)
        print(var, len(os.listdir(root)) if root else "-", flush=True)


def client_for(backend: str, tmp: str) -> TrainerClient:
    if backend == "local":
        from kubeflow_trainer_local import LocalProcessBackendConfig

        return TrainerClient(LocalProcessBackendConfig(state_dir=f"{tmp}/state", data_cache_dir=f"{tmp}/data"))
    if backend == "docker":
        from kubeflow_trainer_docker import DockerBackendConfig

        return TrainerClient(DockerBackendConfig(image=IMAGE, pull_policy="Never"))
    from kubeflow_trainer_podman import PodmanBackendConfig

    return TrainerClient(PodmanBackendConfig(image=IMAGE, pull_policy="Never", host=PODMAN_URL))


def run(client: TrainerClient, initializer: Initializer | None) -> tuple[float, dict[str, float]]:
    name = f"bench-init-{uuid.uuid4().hex[:6]}"
    start = time.perf_counter()
    client.train(trainer=CustomTrainer(func=listing), initializer=initializer, options=[Name(name)])
    client.wait_for_job_status(name, timeout=1800, polling_interval=0.05)
    total = time.perf_counter() - start
    steps = {}
    for step in ("dataset-initializer", "model-initializer"):
        if initializer is None:
            continue
        for line in client.get_job_logs(name, step=step):
            match = DONE.search(line)
            if match:
                steps[step] = float(match.group(3))
    client.delete_job(name)
    return total, steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["local", "docker", "podman"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dataset-mib", type=int, default=64)
    parser.add_argument("--model-mib", type=int, default=256)
    args = parser.parse_args()
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = f"127.0.0.1,localhost,{host_address()}"
    objects = 16
    chunk = os.urandom(args.dataset_mib * 2**20 // objects)
    model = os.urandom(args.model_mib * 2**20)
    rows = []
    with S3Server() as s3, FileServer({"/model.safetensors": model}) as files, tempfile.TemporaryDirectory() as tmp:
        s3.put_tree("bench", "ds", {f"part-{i:02d}.bin": chunk for i in range(objects)})
        for backend in args.backends:
            host = "127.0.0.1" if backend == "local" else host_address()
            cache = f"bench-{uuid.uuid4().hex[:6]}"

            def initializer(cached: bool, host: str = host, cache: str = cache) -> Initializer:
                return Initializer(
                    dataset=S3DatasetInitializer(
                        storage_uri="s3://bench/ds/",
                        endpoint=s3.endpoint(host),
                        access_key_id=s3.access_key,
                        secret_access_key=s3.secret_key,
                        cache=cache if cached else None,
                    ),
                    model=UrlModelInitializer(
                        storage_uri=files.url("/model.safetensors", host), cache=cache if cached else None
                    ),
                )

            with client_for(backend, tmp) as client:
                run(client, None)  # warm: environments, image layers
                run(client, initializer(False))
                run(client, initializer(True))  # stores the cache
                for label, init in (
                    ("no initializers", None),
                    ("S3 + HTTP, downloaded", initializer(False)),
                    ("S3 + HTTP, from cache", initializer(True)),
                ):
                    results = [run(client, init) for _ in range(args.runs)]
                    total = statistics.median(r[0] for r in results)
                    ds = [r[1].get("dataset-initializer", 0.0) for r in results]
                    md = [r[1].get("model-initializer", 0.0) for r in results]
                    rows.append((backend, label, total, statistics.median(ds), statistics.median(md)))
                if backend != "local":
                    client.backend.delete_cache(cache)  # type: ignore[attr-defined]
    print(
        f"\ndataset: {objects} S3 objects, {args.dataset_mib} MiB; model: one {args.model_mib} MiB file over HTTP; "
        f"median of {args.runs}\n"
    )
    print("| backend | job | train() -> Complete | dataset step | model step |\n|---|---|---|---|---|")
    for backend, label, total, ds, md in rows:
        steps = (f"{ds:.2f} s", f"{md:.2f} s") if label != "no initializers" else ("-", "-")
        print(f"| {backend} | {label} | {total:.2f} s | {steps[0]} | {steps[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
