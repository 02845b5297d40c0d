"""The torchrun command and rendezvous environment, computed once for every backend.

A backend only says how node 0 is addressed (``127.0.0.1``, a container name, a headless-service name) and
which port it listens on. The environment matches what the Kubeflow Trainer torch runtime injects
(``PET_*``: torchrun reads them as defaults for its flags), so the same training code sees the same
variables on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MASTER_PORT = 29500
DEFAULT_RDZV_TIMEOUT = 120
"""Seconds torchrun waits for all nodes to join; without it a missing master blocks for many minutes."""


@dataclass(frozen=True)
class Rendezvous:
    """Static torchrun rendezvous for one node of a job."""

    num_nodes: int
    procs_per_node: int
    node_rank: int
    master_addr: str
    master_port: int = DEFAULT_MASTER_PORT
    timeout: int = DEFAULT_RDZV_TIMEOUT
    max_restarts: int = 0
    """How often torchrun restarts the node's worker group after a worker failed (the ``MaxRestarts`` option)."""

    def __post_init__(self) -> None:
        if self.num_nodes < 1 or self.procs_per_node < 1:
            raise ValueError("num_nodes and procs_per_node must be at least 1")
        if not 0 <= self.node_rank < self.num_nodes:
            raise ValueError(f"node_rank {self.node_rank} out of range for {self.num_nodes} nodes")
        if not 0 < self.master_port < 65536:
            raise ValueError(f"master_port {self.master_port} is not a TCP port")

    @property
    def world_size(self) -> int:
        """Number of training processes across all nodes."""
        return self.num_nodes * self.procs_per_node

    def env(self) -> dict[str, str]:
        """Environment of the node's torchrun process (Kubeflow Trainer's ``PET_*`` names)."""
        return {
            "PET_NNODES": str(self.num_nodes),
            "PET_NPROC_PER_NODE": str(self.procs_per_node),
            "PET_NODE_RANK": str(self.node_rank),
            "PET_MASTER_ADDR": self.master_addr,
            "PET_MASTER_PORT": str(self.master_port),
        }

    def torchrun_args(self, script: str, torchrun: str = "torchrun") -> list[str]:
        """``torchrun`` argv running ``script`` for this node (explicit flags, no shell)."""
        return [
            torchrun,
            f"--nnodes={self.num_nodes}",
            f"--nproc-per-node={self.procs_per_node}",
            f"--node-rank={self.node_rank}",
            "--rdzv-backend=static",
            f"--master-addr={self.master_addr}",
            f"--master-port={self.master_port}",
            f"--rdzv-conf=timeout={self.timeout}",
            f"--max-restarts={self.max_restarts}",
            script,
        ]
