"""2-node gloo all_reduce check, run by verify-engines.sh under torchrun in each container."""

import socket
import sys
import time

import torch
import torch.distributed as dist

t0 = time.time()
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
x = torch.tensor([float(rank + 1)])
dist.all_reduce(x, op=dist.ReduceOp.SUM)
expected = world * (world + 1) / 2
print(
    f"host={socket.gethostname()} rank={rank} world_size={world} all_reduce={x.item()} "
    f"expected={expected} ok={x.item() == expected} python={sys.executable} "
    f"torch={torch.__version__} init+allreduce={time.time() - t0:.2f}s",
    flush=True,
)
dist.barrier()
dist.destroy_process_group()
assert x.item() == expected
assert sys.executable.startswith("/opt/venv/"), sys.executable
