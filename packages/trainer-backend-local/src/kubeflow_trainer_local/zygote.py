"""The hot-start server ("zygote"): one per job environment, it has imported the environment's heavy packages
once and forks a fresh node per request, so a warm job pays neither interpreter start-up nor ``import torch``.

Run by path with the job environment's interpreter (it imports nothing from the SDK: the environment has
only the user's packages)::

    <venv>/bin/python -u zygote.py <socket> <idle_seconds> <module>...

It imports ``<module>...`` (never initialising CUDA), listens on ``<socket>`` (a unix socket the client made
private: mode 0600 in a 0700 directory; peers of another uid are refused) and exits by itself after
``idle_seconds`` with no node running and no client connected.

Protocol: one request per connection, a JSON line whose first chunk carries the node's log file descriptor
(``SCM_RIGHTS``): ``{"op": "spawn", "node": {...}}`` (a node), or ``{"op": "call", "call": {"module", "args",
"env", "cwd"}}`` (``module.main(args)`` in a process of its own: the SDK's own zygote forks supervisors).
The reply is ``{"pid": <pid>}`` and, when that process exits, ``{"exit": <code>}`` (negative: killed by that
signal), both JSON lines. A node's client (the job's supervisor) keeps its connection until the node exits: when
the connection closes first (the supervisor was killed), the node's session is killed, so no node outlives its
supervisor (a ``call``'s client, the submitting SDK, hangs up at once and its supervisor runs on).
``{"op": "ping"}`` answers ``{"pid": <zygote pid>, "modules": [...]}``; ``{"op": "exit"}`` stops the server
(nodes keep running).

A node is what one ``torchrun`` is: a session leader (the "agent") in the node's working directory, with its
log as stdout and stderr, pinned to the node's CPUs, that forks ``nproc`` workers with the environment
torchrun gives its workers (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``TORCHELASTIC_*``...), hosts the
rendezvous store on node 0 as torchrun's agent does, restarts the workers up to ``max_restarts`` times, stops
the others when one fails (exit code 1, as torchrun) and waits for the other nodes before node 0's store goes
away (torchrun's exit barrier). A plain (non-torch) node is one worker with the node's environment.
"""

from __future__ import annotations

import atexit
import importlib
import io
import json
import os
import selectors
import signal
import socket
import sys
import tempfile
import time
import traceback
from typing import Any

EXIT_BARRIER_TIMEOUT = 300.0
"""Seconds node 0 waits for the other nodes to finish (torchrun's default exit barrier timeout)."""
LEAVE_TIMEOUT = 30.0
"""Seconds node 0 waits, after the exit barrier, for the other nodes to leave it (they do at once)."""
STOP_GRACE = 30.0
"""Seconds the agent waits after SIGTERM before SIGKILL when it stops its workers (torchrun's default)."""
TORCHRUN_SIGNALS = "SIGTERM,SIGINT,SIGHUP,SIGQUIT"


def _read_line(conn: socket.socket, first: bytes) -> bytes:
    data = first
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the client went away; the node runs on


# The worker: what ``python -u script`` would be, forked ------------------------------------------------
def _worker(node: dict[str, Any], env: dict[str, str]) -> int:
    """Run the node's script as ``__main__`` in this (forked) process; its exit code."""
    import runpy

    os.environ.clear()
    os.environ.update(env)
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    script = node["script"]
    sys.argv = [script, *node.get("script_args", [])]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True, errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True, errors="backslashreplace")
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    tempfile.tempdir = None  # recomputed from this process's TMPDIR
    if "numpy" in sys.modules:  # the global RNG was seeded once in the zygote: every worker gets its own
        sys.modules["numpy"].random.seed()
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    return code


def _finish_worker(code: int) -> None:
    """End a worker as an interpreter would (threads joined, atexit run, streams flushed), without running
    the finalizers of what it inherited from the zygote."""
    import threading

    try:
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code & 0xFF)


# The agent: what torchrun is for one node --------------------------------------------------------------
class _Agent:
    def __init__(self, node: dict[str, Any], added_env: dict[str, str]) -> None:
        self.node = node
        self.env = dict(node["env"])
        for key, value in added_env.items():  # e.g. LC_CTYPE from the interpreter's locale coercion
            self.env.setdefault(key, value)
        self.torch = bool(node.get("torch"))
        self.workers: dict[int, int] = {}  # pid -> local rank
        self.store: Any = None
        self.stopping = False
        self.error_dir = tempfile.mkdtemp(prefix="torchelastic_") if self.torch else ""

    def worker_env(self, local_rank: int, restart: int) -> dict[str, str]:
        env = dict(self.env)
        if not self.torch:
            return env
        n = self.node
        nproc, nnodes, node_rank = int(n["nproc_per_node"]), int(n["nnodes"]), int(n["node_rank"])
        rank = node_rank * nproc + local_rank
        world = nnodes * nproc
        if nproc > 1 and "OMP_NUM_THREADS" not in env:
            env["OMP_NUM_THREADS"] = "1"
        error_file = os.path.join(self.error_dir, f"attempt_{restart}", str(local_rank), "error.json")
        os.makedirs(os.path.dirname(error_file), exist_ok=True)
        env.update(
            {
                "LOCAL_RANK": str(local_rank),
                "RANK": str(rank),
                "GROUP_RANK": str(node_rank),
                "ROLE_RANK": str(rank),
                "ROLE_NAME": "default",
                "LOCAL_WORLD_SIZE": str(nproc),
                "WORLD_SIZE": str(world),
                "GROUP_WORLD_SIZE": str(nnodes),
                "ROLE_WORLD_SIZE": str(world),
                "MASTER_ADDR": str(n["master_addr"]),
                "MASTER_PORT": str(n["master_port"]),
                "TORCHELASTIC_RESTART_COUNT": str(restart),
                "TORCHELASTIC_MAX_RESTARTS": str(n.get("max_restarts", 0)),
                "TORCHELASTIC_RUN_ID": str(n.get("run_id", "none")),
                "TORCHELASTIC_USE_AGENT_STORE": "True",
                "TORCH_NCCL_ASYNC_ERROR_HANDLING": env.get("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"),
                "TORCHELASTIC_SIGNALS_TO_HANDLE": env.get("TORCHELASTIC_SIGNALS_TO_HANDLE", TORCHRUN_SIGNALS),
                "TORCHELASTIC_ERROR_FILE": error_file,
            }
        )
        return env

    def start_workers(self, restart: int) -> None:
        nproc = int(self.node.get("nproc_per_node", 1)) if self.torch else 1
        for local_rank in range(nproc):
            env = self.worker_env(local_rank, restart)
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = _worker(self.node, env)
                finally:
                    _finish_worker(code)
            self.workers[pid] = local_rank

    def host_store(self) -> None:
        """Node 0 hosts the rendezvous store the workers connect to (``TORCHELASTIC_USE_AGENT_STORE``); the
        other nodes connect to it for the exit barrier. Made after the workers are forked: its threads are
        never forked."""
        if not self.torch or self.store is not None:
            return
        from torch.distributed import TCPStore

        n = self.node
        timeout = float(n.get("rdzv_timeout") or 900)
        import datetime

        self.store = TCPStore(
            str(n["master_addr"]),
            int(n["master_port"]),
            is_master=int(n["node_rank"]) == 0,
            multi_tenant=True,
            timeout=datetime.timedelta(seconds=timeout),
        )

    def wait_workers(self) -> tuple[int, int] | None:
        """Wait for this attempt's workers; None when all exited 0, else (local rank, code) of the first
        failure (the others stopped)."""
        failure: tuple[int, int] | None = None
        while self.workers:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            local_rank = self.workers.pop(pid, None)
            if local_rank is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code != 0 and failure is None:
                failure = (local_rank, code)
                self.stop_workers()
        return failure

    def stop_workers(self) -> None:
        for pid in self.workers:
            _kill(pid, signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE
        while self.workers and time.monotonic() < end:
            for pid in list(self.workers):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    self.workers.pop(pid)
            time.sleep(0.02)
        for pid in list(self.workers):
            _kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self.workers.pop(pid)

    def exit_barrier(self) -> None:
        """torchrun's exit barrier: each node waits until every node's workers ended. Node 0 hosts the store, so
        it also leaves last: it waits until each other node said it left (a node still reading its answer when
        node 0 exits gets "Connection reset by peer" in its log)."""
        nnodes = int(self.node.get("nnodes", 1))
        if not self.torch or nnodes <= 1 or self.store is None:
            return
        import datetime

        try:
            self.store.set_timeout(datetime.timedelta(seconds=EXIT_BARRIER_TIMEOUT))
            if self.store.add("/kft/hot/exit_barrier", 1) >= nnodes:
                self.store.set("/kft/hot/exit_barrier/done", "1")
            else:
                self.store.wait(["/kft/hot/exit_barrier/done"])
            if int(self.node.get("node_rank", 0)) != 0:
                self.store.add("/kft/hot/exit_barrier/left", 1)
                return
            deadline = time.monotonic() + LEAVE_TIMEOUT
            while self.store.add("/kft/hot/exit_barrier/left", 0) < nnodes - 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)  # the last answer is on its way out of this process's store thread
        except Exception as exc:  # torchrun logs a failed exit barrier and exits normally
            print(f"[hot-start] exit barrier: {exc}", file=sys.stderr, flush=True)

    def report(self, failure: tuple[int, int], restart: int) -> None:
        local_rank, code = failure
        n = self.node
        rank = int(n.get("node_rank", 0)) * int(n.get("nproc_per_node", 1)) + local_rank
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        print(
            f"[hot-start] worker failed: local_rank {local_rank} (rank {rank}) with {how} "
            f"(restart {restart} of {n.get('max_restarts', 0)}), script {n['script']}",
            file=sys.stderr,
            flush=True,
        )
        target = self.env.get("TORCHELASTIC_ERROR_FILE")
        source = os.path.join(self.error_dir, f"attempt_{restart}", str(local_rank), "error.json")
        if self.torch and target and os.path.exists(source):  # as torchrun's record(): the child's error file
            with open(source, "rb") as src, open(target, "wb") as dst:
                dst.write(src.read())

    def on_signal(self, signum: int, _frame: Any) -> None:
        self.stopping = True
        for pid in self.workers:
            _kill(pid, signum)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, self.on_signal)
        max_restarts = int(self.node.get("max_restarts", 0)) if self.torch else 0
        restart = 0
        while True:
            self.start_workers(restart)
            if self.torch:
                self.host_store()
            failure = self.wait_workers()
            if failure is None:
                if self.stopping:
                    return 1
                self.exit_barrier()
                return 0
            if self.stopping or not self.torch:
                return failure[1] if not self.torch else 1
            self.report(failure, restart)
            if restart >= max_restarts:
                return 1
            restart += 1


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def mark_environ(var: str, value: str) -> bool:
    """Write ``value`` over the placeholder of ``var`` in this process's original environment block (what
    ``/proc/<pid>/environ`` shows, and what the forked workers inherit), so that tools finding a job's
    processes by that variable find forked ones too. The placeholder (zeros, at least as long as ``value``; a
    shorter value is ended with NULs) was in the zygote's environment when it started. False when there is
    none to overwrite or ``value`` does not fit."""
    import ctypes

    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        env_start = int(fields[47])  # field 50 of proc(5): address of the environment block
        with open("/proc/self/environ", "rb") as fh:
            block = fh.read()
    except (OSError, IndexError, ValueError):
        return False
    entry = f"{var}=".encode()
    offset = (b"\0" + block).find(b"\0" + entry)
    if offset < 0:
        return False
    start = offset + len(entry)
    end = block.find(b"\0", start)
    room = (end if end >= 0 else len(block)) - start
    data = value.encode()
    if block[start : start + room] != b"0" * room or not 0 < len(data) <= room or b"\0" in data:
        return False
    ctypes.memmove(env_start + start, data + b"\0" * (room - len(data)), room)
    return True


def _become(log_fd: int, cwd: str) -> None:
    """A session of its own, stdin from /dev/null, stdout and stderr to ``log_fd``, in ``cwd``."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(devnull)
    os.close(log_fd)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
    os.chdir(cwd)


def _run_call(call: dict[str, Any], log_fd: int, passed: list[int]) -> int:
    """In a forked process: ``<module>.main(args)`` with ``env`` as the whole environment (a process the SDK
    would otherwise start as ``python -m <module> args...``, e.g. a job's supervisor). Descriptors passed along
    stay open; ``{fd0}`` in an argument is the first one's number."""
    _become(log_fd, call.get("cwd") or "/")
    os.environ.clear()
    os.environ.update(call["env"])
    args = [a.replace("{fd0}", str(passed[0])) if passed else a for a in call["args"]]
    sys.argv = [call["module"], *args]
    module = importlib.import_module(call["module"])
    return int(module.main(args) or 0)


def _run_node(node: dict[str, Any], log_fd: int, added_env: dict[str, str]) -> int:
    """In the forked node process: become the node (session, CPUs, log, cwd) and run its agent."""
    for var in node.get("mark_vars") or [node.get("uid_var")]:
        if var and node["env"].get(var):
            mark_environ(var, node["env"][var])
    if node.get("cpus"):
        os.sched_setaffinity(0, node["cpus"])
    _become(log_fd, node["cwd"])
    return _Agent(node, added_env).run()


# The server ---------------------------------------------------------------------------------------------
class Zygote:
    """The server loop: accept spawn requests, fork nodes, report their exits, exit when idle."""

    def __init__(self, path: str, idle: float, modules: list[str]) -> None:
        self.path = path
        self.idle = idle
        self.modules = modules
        self.children: dict[int, socket.socket] = {}
        self.nodes: set[int] = set()
        """Children that are nodes (``spawn``): stopped when their client hangs up before they exit."""
        self.clients: set[socket.socket] = set()
        self.selector = selectors.DefaultSelector()
        self.added_env = self._added_env()
        self.running = True
        self.wake_w = -1
        self.inode = -1

    @staticmethod
    def _added_env() -> dict[str, str]:
        """Variables the interpreter added to its own environment at start-up (PEP 538's LC_CTYPE): a
        freshly started worker interpreter would add them too."""
        try:
            with open("/proc/self/environ", "rb") as fh:
                original = {e.split(b"=", 1)[0].decode() for e in fh.read().split(b"\0") if b"=" in e}
        except OSError:
            return {}
        return {k: v for k, v in os.environ.items() if k not in original}

    def serve(self) -> int:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            tmp = f"{self.path}.{os.getpid()}"
            server.bind(tmp)
            os.chmod(tmp, 0o600)
            server.listen(64)
            os.replace(tmp, self.path)  # clients only ever see a socket that is listening
            self.inode = os.stat(self.path).st_ino
        finally:
            os.umask(old)
        server.setblocking(False)
        wake_r, self.wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        self.selector.register(server, selectors.EVENT_READ, "server")
        self.selector.register(wake_r, selectors.EVENT_READ, "wake")
        idle_since = time.monotonic()
        try:
            while self.running:
                for key, _ in self.selector.select(timeout=1.0):
                    if key.data == "server":
                        self._accept(server)
                    elif key.data == "wake":
                        try:
                            os.read(wake_r, 4096)
                        except BlockingIOError:
                            pass
                    else:
                        self._drop(key.fileobj)  # type: ignore[arg-type]
                self._reap()
                if self.children or self.clients:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.idle or not self._socket_is_ours():
                    break
        finally:
            if self._socket_is_ours():  # a zygote that replaced ours owns the files
                base = self.path[: -len(".sock")] if self.path.endswith(".sock") else self.path
                for path in (self.path, f"{self.path}.lock", f"{base}.log"):
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
        return 0

    def _stop(self, *_: Any) -> None:
        self.running = False

    def _socket_is_ours(self) -> bool:
        """False when another zygote replaced our socket file (we then leave)."""
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False

    def _accept(self, server: socket.socket) -> None:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        if int.from_bytes(creds[4:8], sys.byteorder) != os.getuid():
            conn.close()  # only our own user may ask us to run code
            return
        conn.setblocking(True)
        conn.settimeout(10)
        try:
            first, fds, _flags, _addr = socket.recv_fds(conn, 65536, 4)
            request = json.loads(_read_line(conn, first))
        except (OSError, ValueError):
            conn.close()
            return
        op = request.get("op")
        if op == "ping":
            _send(conn, {"pid": os.getpid(), "modules": self.modules})
            conn.close()
        elif op == "exit":
            _send(conn, {"pid": os.getpid()})
            conn.close()
            self.running = False
        elif (op == "spawn" and len(fds) == 1) or (op == "call" and fds):
            self._spawn(conn, request, fds[0], fds[1:])
        else:
            for fd in fds:
                os.close(fd)
            _send(conn, {"error": f"bad request {op!r}"})
            conn.close()

    def _spawn(self, conn: socket.socket, request: dict[str, Any], log_fd: int, passed: list[int]) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self._close_inherited(conn)
                if request["op"] == "call":
                    code = _run_call(request["call"], log_fd, passed)
                else:
                    code = _run_node(request["node"], log_fd, self.added_env)
            except BaseException:
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code & 0xFF)
        for fd in (log_fd, *passed):
            os.close(fd)
        self.children[pid] = conn
        if request["op"] == "spawn":
            self.nodes.add(pid)
        self.clients.add(conn)
        conn.settimeout(None)
        self.selector.register(conn, selectors.EVENT_READ, "client")
        _send(conn, {"pid": pid})

    def _close_inherited(self, conn: socket.socket) -> None:
        """In a forked node: close the server's sockets and pipes (a client must see EOF when the zygote
        goes, whatever its nodes hold)."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for key in list(self.selector.get_map().values()):
            fileobj = key.fileobj
            if isinstance(fileobj, socket.socket):
                fileobj.close()
            else:
                os.close(int(fileobj))  # type: ignore[arg-type]
        self.selector.close()
        conn.close()
        os.close(self.wake_w)

    def _drop(self, conn: socket.socket) -> None:
        """A client closed its end: a node's supervisor is gone (killed: it waits for its nodes otherwise), so the
        node's session is killed; a ``call``'s process (a supervisor) runs on."""
        try:
            if conn.recv(1, socket.MSG_PEEK):
                return
        except OSError:
            pass
        self.selector.unregister(conn)
        self.clients.discard(conn)
        for pid, c in list(self.children.items()):
            if c is conn:
                self.children[pid] = None  # type: ignore[assignment]
                if pid in self.nodes:
                    try:
                        os.killpg(pid, signal.SIGKILL)  # the node is a session leader: its workers go too
                    except (ProcessLookupError, PermissionError):
                        pass
        conn.close()

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            self.nodes.discard(pid)
            if conn is not None:
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                self.selector.unregister(conn)
                self.clients.discard(conn)
                conn.close()


def _preload(modules: list[str]) -> list[str]:
    import importlib.util

    loaded = []
    for name in modules:
        if importlib.util.find_spec(name.split(".")[0]) is None:
            continue  # not in this environment
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken package fails in the job, as without hot starts
            print(f"[zygote] could not import {name}: {exc}", file=sys.stderr, flush=True)
        else:
            loaded.append(name)
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():  # pragma: no cover - a bug
        raise SystemExit("[zygote] CUDA was initialised while importing; refusing to fork")
    return loaded


def main(argv: list[str]) -> int:
    """``zygote.py <socket> <idle_seconds> <module>...``"""
    path, idle, *modules = argv
    loaded = _preload(modules)
    print(f"[zygote] pid {os.getpid()} imported {loaded}; serving {path}", flush=True)
    return Zygote(path, float(idle), loaded).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
