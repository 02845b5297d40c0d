"""Dataset and model initializers: fill /workspace/dataset and /workspace/model before the trainer starts.

This example makes a small CSV dataset and a starting checkpoint in a temporary directory and hands them to
the job through URL/path initializers; with S3 or the Hugging Face Hub only the initializer type changes:

    Initializer(
        dataset=S3DatasetInitializer(storage_uri="s3://bucket/prefix", endpoint="http://minio:9000",
                                     access_key_id=..., secret_access_key=..., cache="my-data"),
        model=HuggingFaceModelInitializer(storage_uri="hf://org/model", revision="main"),
    )

The training function finds the files through KUBEFLOW_TRAINER_DATASET_DIR / KUBEFLOW_TRAINER_MODEL_DIR on
every backend. Switch backends with KUBEFLOW_TRAINER_BACKEND=local|docker|podman.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
from pathlib import Path

from kubeflow_trainer import (
    CustomTrainer,
    Initializer,
    TrainerClient,
    UrlDatasetInitializer,
    UrlModelInitializer,
)


def train(steps: int) -> None:
    """Fine-tune the starting checkpoint on the dataset (one process)."""
    import csv
    import json
    import os

    import torch

    data_dir, model_dir = os.environ["KUBEFLOW_TRAINER_DATASET_DIR"], os.environ["KUBEFLOW_TRAINER_MODEL_DIR"]
    with open(os.path.join(data_dir, "train.csv")) as fh:
        rows = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(fh)]
    with open(os.path.join(model_dir, "checkpoint.json")) as fh:
        start = json.load(fh)
    w = torch.tensor([start["w"]], requires_grad=True)
    b = torch.tensor([start["b"]], requires_grad=True)
    x = torch.tensor([r[0] for r in rows])
    y = torch.tensor([r[1] for r in rows])
    opt = torch.optim.SGD([w, b], lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.mean((w * x + b - y) ** 2)
        loss.backward()
        opt.step()
    print(
        f"{len(rows)} rows from {data_dir}; start {start}; after {steps} steps w={w.item():.2f} "
        f"b={b.item():.2f} loss={loss.item():.4f}",
        flush=True,
    )


def main() -> int:
    backend = os.environ.get("KUBEFLOW_TRAINER_BACKEND", "local")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp, "data")
        data.mkdir()
        rng = random.Random(0)
        lines = ["x,y"] + [f"{x},{3 * x + 1 + rng.gauss(0, 0.1):.4f}" for x in (i / 10 for i in range(50))]
        (data / "train.csv").write_text("\n".join(lines) + "\n")
        checkpoint = Path(tmp, "checkpoint.json")
        checkpoint.write_text(json.dumps({"w": 0.0, "b": 0.0}))

        client = TrainerClient(backend=backend)
        name = client.train(
            trainer=CustomTrainer(func=train, func_args={"steps": 300}),
            initializer=Initializer(
                dataset=UrlDatasetInitializer(storage_uri=str(data)),
                model=UrlModelInitializer(storage_uri=checkpoint.as_uri()),
            ),
        )
        print(f"started {name} on {backend}")
        job = client.wait_for_job_status(name, timeout=1800)
        for step in ("dataset-initializer", "model-initializer", "node-0"):
            for line in client.get_job_logs(name, step=step):
                print(f"[{step}] {line}")
        print(f"{name}: {job.status}; steps: {[(s.name, s.status) for s in job.steps]}")
        client.delete_job(name)
    return 0 if job.status == "Complete" else 1


if __name__ == "__main__":
    sys.exit(main())
