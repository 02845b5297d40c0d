"""The SDK's own zygote: job supervisors forked from a process that has imported the supervisor's modules,
instead of started as ``python -m kubeflow_trainer_local.supervisor`` (an interpreter and the SDK's imports
per job)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
from typing import IO

from kubeflow_trainer_local.hotstart import (
    HotStarter,
    HotStartUnavailable,
    default_socket_dir,
    private_dir,
    startup_env,
    zygote_source,
)

FD_PLACEHOLDER = "{fd0}"
"""In a forked call's arguments: the number, in the forked process, of the first descriptor passed along."""


def inherited_environ() -> dict[str, str]:
    """The environment a child started with ``env=None`` gets: the C library's ``environ``, which holds what
    ``os.environ`` holds and what C code of this process set (readline sets ``LINES`` and ``COLUMNS``)."""
    import ctypes

    try:
        environ = ctypes.POINTER(ctypes.c_char_p).in_dll(ctypes.CDLL(None), "environ")
    except (OSError, ValueError):
        return dict(os.environ)
    found: dict[str, str] = {}
    i = 0
    while environ[i] is not None:
        key, eq, value = os.fsdecode(environ[i]).partition("=")
        if eq:
            found.setdefault(key, value)
        i += 1
    return found


SUPERVISOR_MODULES = (
    "kubeflow_trainer_local.supervisor",
    "kubeflow_trainer_local.envcache",
    "kubeflow_trainer_local.launch",
    "psutil",
)
"""What the SDK's zygote imports: everything a supervisor needs before it starts the nodes."""


def _sources_identity() -> list[tuple[str, int, int]]:
    """(path, mtime, size) of the SDK's own modules: a zygote never serves code that changed since it
    started (an upgrade, or an edit of a development checkout)."""
    import kubeflow_trainer

    found = []
    for package in (os.path.dirname(kubeflow_trainer.__file__ or ""), os.path.dirname(__file__)):
        for root, _dirs, files in os.walk(package):
            for file in files:
                if file.endswith(".py"):
                    info = os.stat(os.path.join(root, file))
                    found.append((os.path.join(root, file), info.st_mtime_ns, info.st_size))
    return sorted(found)


class SupervisorForker:
    """Forks a job's supervisor from the SDK's zygote (the client's interpreter with the supervisor's modules
    imported) instead of starting ``python -m kubeflow_trainer_local.supervisor``. When no zygote is running
    it starts one for the next jobs and returns None: this job's supervisor is started as a process."""

    def __init__(self, socket_dir: str | None, idle_seconds: float) -> None:
        self.socket_dir = socket_dir
        self.idle_seconds = idle_seconds
        self.started: subprocess.Popen[bytes] | None = None
        """The zygote this forker started (a child of the caller, who reaps it)."""

    def _path(self) -> str:
        with open(zygote_source(), "rb") as fh:
            code = hashlib.sha256(fh.read()).hexdigest()
        env = startup_env(dict(os.environ))
        blob = json.dumps([sys.executable, env, code, _sources_identity(), SUPERVISOR_MODULES], sort_keys=True)
        key = "sdk-" + hashlib.sha256(blob.encode()).hexdigest()[:16]
        return os.path.join(private_dir(self.socket_dir or default_socket_dir()), f"{key}.sock")

    def fork(
        self, module: str, args: list[str], env: dict[str, str], log: IO[bytes], pass_fds: list[int] | None = None
    ) -> int | None:
        """The pid of ``module.main(args)`` forked with ``env`` and ``log`` as stdout/stderr, or None.
        ``pass_fds`` are sent along (``SCM_RIGHTS``) and stay open in the forked process; :data:`FD_PLACEHOLDER`
        in an argument becomes the number of the first of them there."""
        try:
            path = self._path()
        except (HotStartUnavailable, OSError):
            return None
        conn = HotStarter._connect(path)
        if conn is None:
            self._start(path, env)
            return None
        with conn:
            try:
                conn.settimeout(10)
                data = json.dumps({"op": "call", "call": {"module": module, "args": args, "env": env}}).encode()
                data += b"\n"
                sent = socket.send_fds(conn, [data], [log.fileno(), *(pass_fds or [])])
                conn.sendall(data[sent:])
                reply = b""
                while not reply.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        return None
                    reply += chunk
                pid = json.loads(reply).get("pid")
            except (OSError, ValueError):
                return None
        return int(pid) if pid else None  # closing the connection: the zygote reaps it, nobody waits

    def _start(self, path: str, env: dict[str, str]) -> None:
        import fcntl

        with open(f"{path}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # another client is starting it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            with open(f"{path[: -len('.sock')]}.log", "ab") as log:
                self.started = subprocess.Popen(
                    [sys.executable, "-u", zygote_source(), path, str(self.idle_seconds), *SUPERVISOR_MODULES],
                    env=startup_env(env),
                    cwd="/",
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
