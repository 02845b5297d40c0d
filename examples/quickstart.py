"""Quick start: a 2-node PyTorch job (gloo all-reduce) on the local backend; shows its preparation, then prints
every node's logs.

Switch backends by changing one name: TrainerClient(backend="docker"), "podman" or "kubernetes".
"""

from __future__ import annotations

import os
import sys

from kubeflow_trainer import CustomTrainer, TrainerClient


def train(epochs: int) -> None:
    """Runs on every process of every node, started by torchrun."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    for epoch in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        for p in model.parameters():  # average gradients across all processes (what DDP does)
            dist.all_reduce(p.grad)
            p.grad /= world
        opt.step()
        total = torch.tensor([loss.item()])
        dist.all_reduce(total)
        print(f"rank {rank}/{world} epoch {epoch} mean loss {total.item() / world:.4f}", flush=True)
    dist.barrier()  # nobody tears gloo down while a peer still talks to it
    dist.destroy_process_group()


def main() -> int:
    backend = os.environ.get("KUBEFLOW_TRAINER_BACKEND", "local")
    client = TrainerClient(backend=backend)
    name = client.train(trainer=CustomTrainer(func=train, func_args={"epochs": 3}, num_nodes=2))
    print(f"started {name} on {backend}; its preparation, then the logs of all nodes:", flush=True)
    # While the job prepares (installing torch into the job's environment on a first run, pulling, starting
    # nodes) a progress display shows how far it is; then every node's lines, merged, prefixed [node-N].
    for line in client.get_job_logs(name, step="all", follow=True):
        print(line, flush=True)
    job = client.wait_for_job_status(name, timeout=1800)
    print(f"{name}: {job.status}; steps: {[(s.name, s.status) for s in job.steps]}")
    client.delete_job(name)
    return 0 if job.status == "Complete" else 1


if __name__ == "__main__":
    sys.exit(main())
