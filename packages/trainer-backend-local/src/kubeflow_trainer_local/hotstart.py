"""Hot starts of nodes: the environment's zygote (:mod:`kubeflow_trainer_local.zygote`) forks each node with the
environment torchrun gives its workers, instead of a ``torchrun`` that imports torch twice.

:class:`HotStarter` finds (or starts) the zygote of the job's environment and asks it to fork a node; it
raises :class:`HotStartUnavailable` (with the reason, which the supervisor records as an event before it falls
back to torchrun) when it cannot serve the job. Zygotes listen on unix sockets in a private directory
(:func:`private_dir`) and are keyed by environment and start-up variables (:meth:`HotStarter.key`).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import socket
import stat
import subprocess
import tempfile
import time
from typing import IO, Any

from kubeflow_trainer_local.launch import Handle, ZygoteHandle
from kubeflow_trainer_local.request import UID_ENV, HotStart, NodeProcess

STARTUP_PREFIXES = ("PYTHON", "LD_", "LC_", "LANG", "OMP_", "MKL_", "KMP_", "GOMP_", "OPENBLAS_", "PYTORCH_")
"""Variables read when an interpreter starts or a native library loads: a zygote serves only nodes whose
values are its own (they are part of its key), the others are set in each forked worker."""
STARTUP_NAMES = ("PATH", "HOME", "TMPDIR", "VIRTUAL_ENV", "CUDA_VISIBLE_DEVICES")
RUNTIME_TORCH = ("TORCHELASTIC_", "TORCH_NCCL_ASYNC_ERROR_HANDLING")
"""``TORCH_*`` variables torchrun sets per worker (not startup variables)."""
TORCHRUN_FLAGS = {
    "nnodes": "nnodes",
    "nproc-per-node": "nproc_per_node",
    "nproc_per_node": "nproc_per_node",
    "node-rank": "node_rank",
    "node_rank": "node_rank",
    "master-addr": "master_addr",
    "master_addr": "master_addr",
    "master-port": "master_port",
    "master_port": "master_port",
    "max-restarts": "max_restarts",
    "max_restarts": "max_restarts",
    "rdzv-backend": "rdzv_backend",
    "rdzv_backend": "rdzv_backend",
    "rdzv-conf": "rdzv_conf",
    "rdzv_conf": "rdzv_conf",
    "rdzv-id": "run_id",
    "rdzv_id": "run_id",
}
"""The torchrun flags a hot start honours; any other flag makes the job fall back to torchrun."""
UID_PLACEHOLDER = "0" * 32
"""The zygote's value of ``UID_ENV``: each forked node writes its job's uid (32 hex digits) over it, so that
``/proc/<pid>/environ`` of its processes carries the uid as a started process's does (the sweep of
``delete_job`` finds them)."""
MARK_PLACEHOLDERS = {
    UID_ENV: UID_PLACEHOLDER,
    "KUBEFLOW_TRAINER_JOB_NAME": "0" * 63,
    "KUBEFLOW_TRAINER_NODE_RANK": "0" * 10,
}
"""Variables whose placeholder (zeros, as long as the longest value) is in the zygote's environment block: each
forked node writes its own value over it, so that ``/proc/<pid>/environ`` of its processes names the job, the
node and the uid as a started process's does (``delete_job``'s sweep, the conformance kit and any tool that
finds a job's processes by them see forked ones too)."""
START_TIMEOUT = 180.0
"""Seconds a new zygote may take to import the environment's packages and listen."""


class HotStartUnavailable(Exception):
    """The zygote cannot serve this job; the message says why (recorded in the job's events)."""


# Hot starts -----------------------------------------------------------------------------------------------
def parse_node(argv: list[str]) -> dict[str, Any]:
    """What a node's argv runs, for a zygote: ``torchrun <flags> script [args]`` or ``python script [args]``.
    Raises :class:`HotStartUnavailable` for anything else (a flag the hot start does not honour)."""
    prog = os.path.basename(argv[0]) if argv else ""
    if prog.startswith("python") and len(argv) >= 2 and not argv[1].startswith("-"):
        return {"torch": False, "script": argv[1], "script_args": argv[2:]}
    if prog != "torchrun":
        raise HotStartUnavailable(f"the node runs {prog or 'nothing'!r}, not torchrun or a Python script")
    node: dict[str, Any] = {"torch": True, "nnodes": "1", "nproc_per_node": "1", "node_rank": "0"}
    node.update(master_addr="127.0.0.1", master_port="29500", max_restarts="0", run_id="none")
    node["rdzv_backend"] = "static"
    rest = argv[1:]
    while rest and rest[0].startswith("-"):
        flag, eq, value = rest.pop(0).lstrip("-").partition("=")
        if flag not in TORCHRUN_FLAGS:
            raise HotStartUnavailable(f"torchrun flag --{flag} is not one hot starts honour")
        if not eq:
            if not rest:
                raise HotStartUnavailable(f"torchrun flag --{flag} has no value")
            value = rest.pop(0)
        node[TORCHRUN_FLAGS[flag]] = value
    if not rest:
        raise HotStartUnavailable("torchrun is given no script")
    if node["rdzv_backend"] != "static":
        raise HotStartUnavailable(f"rendezvous backend {node['rdzv_backend']!r} (hot starts emulate 'static')")
    for key in ("nnodes", "nproc_per_node", "node_rank", "master_port", "max_restarts"):
        if not str(node[key]).isdigit():
            raise HotStartUnavailable(f"torchrun --{key.replace('_', '-')}={node[key]} is not a plain number")
    conf = dict(kv.split("=", 1) for kv in str(node.pop("rdzv_conf", "")).split(",") if "=" in kv)
    node["rdzv_timeout"] = conf.get("timeout", "900")
    node["script"], node["script_args"] = rest[0], rest[1:]
    return node


def startup_env(env: dict[str, str]) -> dict[str, str]:
    """The variables of ``env`` an interpreter or a native library reads when it starts (a zygote's own)."""
    return {
        k: v
        for k, v in env.items()
        if (k.startswith(STARTUP_PREFIXES) or k in STARTUP_NAMES or k.startswith("TORCH"))
        and not k.startswith(RUNTIME_TORCH)
    }


def gpus_visible(env: dict[str, str]) -> bool:
    """NVIDIA devices exist and ``CUDA_VISIBLE_DEVICES`` does not hide them."""
    if env.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def uses_cuda(venv: str) -> bool:
    """The environment's torch is a CUDA build (it ships libtorch_cuda)."""
    return bool(glob.glob(os.path.join(venv, "lib", "python*", "site-packages", "torch", "lib", "libtorch_cuda*")))


def default_socket_dir() -> str:
    """``$XDG_RUNTIME_DIR/kubeflow-trainer-hot``, else ``<tmp>/kubeflow-trainer-hot-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "kubeflow-trainer-hot")
    return os.path.join(tempfile.gettempdir(), f"kubeflow-trainer-hot-{os.getuid()}")


def private_dir(path: str) -> str:
    """Create ``path`` (mode 0700) or check that it is ours and private: the sockets in it run code."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise HotStartUnavailable(
            f"{path} is not a private directory of this user (mode {stat.filemode(info.st_mode)}, uid "
            f"{info.st_uid}); remove it or set hot_start_dir"
        )
    return path


def zygote_source() -> str:
    """Path of the zygote script (run by path with the job environment's interpreter)."""
    from kubeflow_trainer_local import zygote

    return str(zygote.__file__)


class HotStarter:
    """Forks nodes from the zygote of the job's environment, starting that zygote when none is running."""

    description = "hot start"

    def __init__(self, config: HotStart, venv: str) -> None:
        self.config = config
        self.venv = venv
        self.python = os.path.join(venv, "bin", "python")
        self.zygote_pid: int | None = None
        self.started_zygote = False

    def check(self, env: dict[str, str]) -> None:
        """Raise :class:`HotStartUnavailable` when this job must run with torchrun."""
        if gpus_visible(env) and uses_cuda(self.venv):
            raise HotStartUnavailable(
                "GPUs are visible and the environment's torch is a CUDA build: nodes are not forked from a "
                "process that has loaded CUDA's libraries"
            )

    def key(self, env: dict[str, str]) -> str:
        """The zygote serving ``env`` in this environment: environment (and its files' identity), startup
        variables, the zygote's code and what it imports."""
        with open(zygote_source(), "rb") as fh:
            code = hashlib.sha256(fh.read()).hexdigest()
        try:
            cfg = os.stat(os.path.join(self.venv, "pyvenv.cfg"))
            identity = [cfg.st_ino, cfg.st_mtime_ns]
        except OSError as exc:
            raise HotStartUnavailable(f"the environment {self.venv} is not there: {exc}") from exc
        blob = json.dumps([self.venv, identity, startup_env(env), code, list(self.config.modules)], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def _socket(self, key: str) -> str:
        return os.path.join(private_dir(self.config.socket_dir or default_socket_dir()), f"{key}.sock")

    @staticmethod
    def _connect(path: str) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            return None
        return sock

    def _ensure(self, env: dict[str, str]) -> str:
        """The socket of a running zygote for ``env`` (started here when none answers)."""
        import fcntl

        path = self._socket(self.key(env))
        probe = self._connect(path)
        if probe is not None:
            probe.close()
            return path
        with open(f"{path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one start per key, whatever the number of jobs starting
            probe = self._connect(path)
            if probe is not None:
                probe.close()
                return path
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            with open(f"{path[: -len('.sock')]}.log", "ab") as log:
                proc = subprocess.Popen(
                    [self.python, "-u", zygote_source(), path, str(self.config.idle_seconds), *self.config.modules],
                    env={**startup_env(env), **MARK_PLACEHOLDERS},
                    cwd="/",
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            self.started_zygote = True
            end = time.monotonic() + START_TIMEOUT
            while time.monotonic() < end:
                if os.path.exists(path):
                    return path
                if proc.poll() is not None:
                    raise HotStartUnavailable(
                        f"the hot-start server exited with code {proc.returncode} (see {path[:-5]}.log)"
                    )
                time.sleep(0.02)
            proc.kill()
            raise HotStartUnavailable(f"the hot-start server did not listen within {START_TIMEOUT:.0f}s")

    def start(self, node: NodeProcess, env: dict[str, str], log: IO[bytes]) -> Handle:
        """Fork ``node`` (with ``env``, the environment torchrun would get) from the zygote."""
        spec = parse_node(node.argv)
        spec.update(env=env, cwd=node.cwd, cpus=node.cpus, uid_var=UID_ENV, mark_vars=list(MARK_PLACEHOLDERS))
        path = self._ensure(env)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(path)
            conn.settimeout(30)
            data = json.dumps({"op": "spawn", "node": spec}).encode() + b"\n"
            sent = socket.send_fds(conn, [data], [log.fileno()])
            conn.sendall(data[sent:])
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    raise HotStartUnavailable("the hot-start server closed the connection")
                reply += chunk
            answer = json.loads(reply)
        except (OSError, ValueError) as exc:
            conn.close()
            raise HotStartUnavailable(f"the hot-start server did not answer: {exc}") from exc
        if "pid" not in answer:
            conn.close()
            raise HotStartUnavailable(f"the hot-start server refused: {answer.get('error')}")
        conn.settimeout(None)
        return ZygoteHandle(conn, int(answer["pid"]))


def stop_zygotes(socket_dir: str | None = None) -> int:
    """Ask every zygote of this user to exit (their nodes keep running); how many were asked."""
    directory = socket_dir or default_socket_dir()
    count = 0
    for path in glob.glob(os.path.join(directory, "*.sock")):
        sock = HotStarter._connect(path)
        if sock is None:
            continue
        with sock:
            socket.send_fds(sock, [b'{"op": "exit"}\n'], [])
            with contextlib.suppress(OSError):
                sock.recv(4096)
            count += 1
    return count
