"""The per-job supervisor: a detached process that prepares the environment, runs the nodes and records
what happens, so the job keeps running and keeps its record when the client exits.

Started by ``train()`` as ``python -m kubeflow_trainer_local.supervisor <state_dir> <job>`` in a session of
its own. It loads the job's :class:`~kubeflow_trainer_local.request.LocalJobRequest` from the request file
(what ``render`` produced, what a dry run shows) and runs exactly that; the initializers' credentials come
from its own environment, never from the file. Each node (one ``torchrun`` per node) also gets a session,
so stopping a node kills its whole process tree (torchrun and its workers) through the process group. When a
node fails, the supervisor stops the other nodes and marks the job Failed. SIGTERM (``delete_job``) stops
every node. Event reasons are :class:`~kubeflow_trainer_local.store.Reason` members.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from kubeflow_trainer.admission import AdmissionQueue, Ticket, wait_for_turn
from kubeflow_trainer.types import JobStatus
from kubeflow_trainer_local.hotstart import HotStarter, HotStartUnavailable, parse_node
from kubeflow_trainer_local.launch import Handle, ProcessStarter
from kubeflow_trainer_local.request import SECRET_PREFIX, UID_ENV, NodeProcess, Process, secret_var
from kubeflow_trainer_local.store import TERMINAL, JobRecord, Reason, admission_dir, now_iso, status_of


class _Stop(Exception):
    """Raised in the main thread by the signal handlers."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def process_identity(pid: int) -> float | None:
    """Creation time of ``pid`` (guards against pid reuse), or None when it does not exist."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_port(node: NodeProcess, old: int, new: int) -> NodeProcess:
    """``node`` with rendezvous port ``old`` replaced by ``new`` (in its torchrun flags and environment)."""
    argv = [f"--master-port={new}" if a == f"--master-port={old}" else a for a in node.argv]
    env = dict(node.env)
    if env.get("PET_MASTER_PORT") == str(old):
        env["PET_MASTER_PORT"] = str(new)
    return node.model_copy(update={"argv": argv, "env": env})


def process_env(process: Process, inherited: dict[str, str], extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment ``process`` runs with: ``inherited`` (the supervisor's) without the secret variables
    and ``process.unset_env``, ``process.path_prepend`` before ``PATH``, ``process.env`` and ``extra`` on top."""
    env = {k: v for k, v in inherited.items() if not k.startswith(SECRET_PREFIX) and k not in process.unset_env}
    if process.path_prepend:
        env["PATH"] = os.pathsep.join([*process.path_prepend, env.get("PATH", "")])
    env.update(process.env)
    env.update(extra or {})
    return env


class Supervisor:
    """Runs one job to completion."""

    def __init__(self, state_dir: str, name: str) -> None:
        self.record = JobRecord(state_dir, name)
        self.request = self.record.request()
        self.state = self.record.state()
        self.procs: dict[int, tuple[str, Handle]] = {}
        self.grace = self.request.stop_grace_seconds
        self.ticket: Ticket | None = None
        self.running_fd: int | None = None

    # State helpers -----------------------------------------------------------------------------------
    def save(self, **changes: Any) -> None:
        self.state.update(changes)
        self.record.write_state(self.state)

    def node_state(self, step: str, **changes: Any) -> None:
        self.state["nodes"][step].update(changes)
        self.record.write_state(self.state)

    def event(self, obj: str, reason: Reason, message: str, kind: str = "Step") -> None:
        self.record.add_event(kind, obj, reason, message)

    # Phases ------------------------------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        deadline = self.request.active_deadline_seconds
        if deadline:
            signal.signal(signal.SIGALRM, self._on_deadline)
            signal.alarm(int(deadline))
        try:
            self.admit()
            self.start_initializers()
            self.prepare()  # the trainer's environment builds while the initializers download
            if self.wait_initializers():
                self.start_nodes()
                self.wait_nodes()
        except _Stop as stop:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            self.stop_nodes(stop.message)
            self.finish(JobStatus.FAILED, stop.reason, stop.message)
        except Exception as exc:  # a bug or an OS error: record it, never leave the job Running
            self.stop_nodes(f"supervisor error: {exc}")
            self.finish(JobStatus.FAILED, Reason.SUPERVISOR_ERROR, f"{type(exc).__name__}: {exc}")
        return 0 if status_of(self.state) == JobStatus.COMPLETE else 1

    def admit(self) -> None:
        """Wait for the job's turn in the admission queue (status Suspended meanwhile), then hold its place
        among the running jobs for as long as this process lives."""
        if self.ticket is None:
            return
        queue = AdmissionQueue(admission_dir(self.record.state_dir))
        limit = self.request.max_running_jobs or 10**9
        queued = False

        def on_wait(place: int, length: int) -> None:
            nonlocal queued
            message = f"queued: {place} of {length} waiting jobs; at most {limit} jobs run at once (max_running_jobs)"
            self.save(status=JobStatus.SUSPENDED, message=message)
            if not queued:
                self.event(self.record.name, Reason.QUEUED, message, "TrainJob")
            queued = True

        def start() -> None:
            self.running_fd = queue.hold_running(self.record.name)

        wait_for_turn(queue, self.ticket, limit, lambda: len(queue.running()), start, on_wait)
        if queued:
            self.save(status=JobStatus.CREATED, message=None)
            self.event(self.record.name, Reason.ADMITTED, "admitted: a running job ended", "TrainJob")

    def _on_signal(self, signum: int, _frame: Any) -> None:
        raise _Stop(Reason.STOPPED, f"the job was stopped (signal {signal.Signals(signum).name})")

    def _on_deadline(self, _signum: int, _frame: Any) -> None:
        raise _Stop(
            Reason.DEADLINE_EXCEEDED,
            f"the job ran longer than activeDeadlineSeconds={self.request.active_deadline_seconds}",
        )

    def prepare(self) -> None:
        """Ensure the trainer's environment (the request's key: the venv the nodes' argv names)."""
        from kubeflow_trainer_local.envcache import EnvironmentCache, EnvironmentError_

        env = self.request.environment
        spec = env.spec
        cache = EnvironmentCache(env.cache_dir)
        self.save(
            message="preparing the environment",
            environment="preparing",
            preparation={"phase": "preparing the environment", "detail": " ".join(spec.requirements)},
        )
        with open(self.record.log_path("environment"), "ab", buffering=0) as log:
            watcher = self._watch_installer(log.tell())
            try:
                _venv, reused, seconds = cache.ensure(spec, log, env.key)
            except EnvironmentError_ as exc:
                from kubeflow_trainer.rootcause import environment_failure

                tail = self._tail(self.record.log_path("environment"), 15)
                cause = environment_failure(self._tail(self.record.log_path("environment"), 400))
                watcher()
                raise _Stop(
                    Reason.ENVIRONMENT_FAILED,
                    f"preparing the environment ({' '.join(spec.requirements) or 'no packages'}) failed: "
                    f"{cause or exc}."
                    f" Check packages_to_install / pip_index_urls. Installer output:\n{tail}",
                ) from exc
            finally:
                watcher()
        self.save(environment="ready", preparation=None)
        if reused:
            self.event(self.record.name, Reason.ENVIRONMENT_REUSED, f"reused cached environment {env.key}", "TrainJob")
        else:
            self.event(
                self.record.name,
                Reason.ENVIRONMENT_PREPARED,
                f"built environment {env.key} in {seconds:.1f}s",
                "TrainJob",
            )

    def _watch_installer(self, offset: int) -> Callable[[], None]:
        """Follow the environment log from ``offset`` in a thread while the installer runs, and record its
        progress (packages resolved, downloaded, installed) as the job's preparation. Call the returned
        function to stop it (it waits for the thread)."""
        from kubeflow_trainer.preparation import InstallerProgress

        stop = threading.Event()
        progress = InstallerProgress()
        path = self.record.log_path("environment")

        def run() -> None:
            pending = b""
            with open(path, "rb") as fh:
                fh.seek(offset)
                while True:
                    stopping = stop.wait(0.2)
                    pending += fh.read()
                    *lines, pending = pending.split(b"\n")
                    changed = False
                    for line in lines:
                        changed |= progress.feed(line.decode(errors="replace"))
                    if changed:
                        prep = progress.preparation()
                        if not stopping:
                            self.save(preparation=prep.model_dump(exclude_defaults=True))
                        # events keep every step (a display polling get_job may miss a quick one)
                        self.event(self.record.name, Reason.PREPARING, prep.describe(), "TrainJob")
                    if stopping:
                        return

        thread = threading.Thread(target=run, name="kft-installer-progress", daemon=True)
        thread.start()

        def finish() -> None:
            stop.set()
            thread.join(timeout=5)

        return finish

    # Initializers ------------------------------------------------------------------------------------
    @staticmethod
    def _secrets(step: str) -> dict[str, str]:
        """The credentials of ``step`` from the supervisor's environment, by the step's variable names."""
        prefix = secret_var(step, "")
        return {k[len(prefix) :]: v for k, v in os.environ.items() if k.startswith(prefix)}

    def init_state(self, step: str, **changes: Any) -> None:
        self.state["initializers"][step].update(changes)
        self.record.write_state(self.state)

    def start_initializers(self) -> None:
        """Prepare each initializer's environment and start its runner; they download in parallel."""
        from kubeflow_trainer_local.envcache import EnvironmentCache, EnvironmentError_

        inits = self.request.initializers
        if not inits:
            return
        self.save(status=JobStatus.RUNNING, message="initializing the dataset and model")
        inherited = dict(os.environ)
        for init in inits:
            step = init.step
            self.init_state(step, status=JobStatus.RUNNING, started=now_iso(), message="preparing its environment")
            cache = EnvironmentCache(init.environment.cache_dir)
            with open(self.record.log_path(step), "ab", buffering=0) as log:
                try:
                    cache.ensure(init.environment.spec, log, init.environment.key)
                except EnvironmentError_ as exc:
                    wanted = " ".join(init.environment.spec.requirements)
                    message = f"preparing the environment of {step} ({wanted}) failed: {exc}"
                    self.init_state(step, status=JobStatus.FAILED, message=message, finished=now_iso())
                    self.event(step, Reason.FAILED, message)
                    continue
                proc = ProcessStarter().start(init, process_env(init, inherited, self._secrets(step)), log)
            self.procs[proc.pid] = (step, proc)
            self.init_state(step, pid=proc.pid, create_time=process_identity(proc.pid), message=None)
            self.event(step, Reason.STARTED, f"{step} started (pid {proc.pid}): fetching {init.source}")

    def wait_initializers(self) -> bool:
        """Wait for the initializer steps; False (job Failed, nodes never started) when one failed."""
        inits = self.state.get("initializers") or {}
        failed = next((s for s, st in inits.items() if status_of(st) == JobStatus.FAILED), None)
        if failed:
            self._nodes_not_started(failed)
            self.stop_nodes(f"stopped because {failed} failed")
        while self.procs:
            step, code = self._reap_next()
            summary = self._summary(step)
            if code == 0:
                self.init_state(step, status=JobStatus.COMPLETE, exit_code=0, finished=now_iso())
                self._cache_event(step, summary)
                self.event(
                    step,
                    Reason.COMPLETED,
                    f"{step} fetched {summary.get('files', '?')} files ({summary.get('bytes', '?')} bytes) in "
                    f"{summary.get('seconds', '?')}s",
                )
                continue
            message = summary.get("message") or self._exit_message(step, code, None)
            self.init_state(step, status=JobStatus.FAILED, exit_code=code, finished=now_iso(), message=message)
            self.event(step, Reason.FAILED, f"{step} failed: {message}")
            if failed is None:
                failed = step
                # The nodes' steps say why in the same save that makes the job Failed: a reader that sees the
                # job Failed (wait_for_job_status returns) sees them "not started", even while another
                # initializer is still being stopped.
                self._nodes_not_started(failed)
                self.save(status=JobStatus.FAILED, message=f"{step} failed: {message}")
                self.stop_nodes(f"stopped because {step} failed")
        if failed is None:
            return True
        message = self.state["initializers"][failed].get("message") or "failed"
        self.finish(JobStatus.FAILED, Reason.INITIALIZER_FAILED, f"{failed} failed: {message}")
        return False

    def _nodes_not_started(self, failed: str) -> None:
        for node in self.state["nodes"].values():
            node.update(status=JobStatus.FAILED, message=f"not started because {failed} failed")

    def _summary(self, step: str) -> dict[str, Any]:
        import json

        path = os.path.join(self.request.layout.status_dir, f"{step}.json")
        try:
            with open(path) as fh:
                return dict(json.load(fh))
        except (OSError, ValueError):
            return {}

    def _cache_event(self, step: str, summary: dict[str, Any]) -> None:
        init = next(i for i in self.request.initializers if i.step == step)
        if summary.get("cache") == "reused":
            message = f"reused cache {init.cache!r}: {init.source} was not downloaded again"
            self.event(step, Reason.CACHE_REUSED, message)
        elif summary.get("cache") == "stored":
            self.event(step, Reason.CACHE_STORED, f"stored {init.source} in cache {init.cache!r}")

    @staticmethod
    def _tail(path: str, lines: int) -> str:
        try:
            with open(path, errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except OSError:
            return ""

    def start_nodes(self) -> None:
        nodes = self.request.nodes
        port = self.request.rendezvous.master_port
        if port and not _port_free(port):
            new = free_port()
            nodes = [with_port(node, port, new) for node in nodes]
            self.event(
                self.record.name, Reason.PORT_REASSIGNED, f"master port {port} was taken; using {new}", "TrainJob"
            )
        inherited = dict(os.environ)
        envs = {node.step: process_env(node, inherited) for node in nodes}
        if self.request.hot_start is not None:
            try:
                if self._start_hot(nodes, envs):
                    return
            except HotStartUnavailable as exc:
                self.event(
                    self.record.name,
                    Reason.HOT_START_FALLBACK,
                    f"hot start not used: {exc}; the nodes run with torchrun",
                    "TrainJob",
                )
        starter = ProcessStarter()
        for node in nodes:
            with open(self.record.log_path(node.step), "ab", buffering=0) as log:
                proc = starter.start(node, envs[node.step], log, node.cpus)
            self._node_started(node, proc, " ".join(node.argv))
        self.save(status=JobStatus.RUNNING, message=None)

    def _node_started(self, node: NodeProcess, proc: Handle, what: str) -> None:
        self.procs[proc.pid] = (node.step, proc)
        self.state["nodes"][node.step].update(
            status=JobStatus.RUNNING, pid=proc.pid, create_time=process_identity(proc.pid), started=now_iso()
        )
        self.event(node.step, Reason.STARTED, f"{node.step} started (pid {proc.pid}): {what}")

    def _start_hot(self, nodes: list[NodeProcess], envs: dict[str, dict[str, str]]) -> bool:
        """Fork every node from the environment's zygote (all or none: a node that cannot be forked stops
        the ones that were, and :class:`HotStartUnavailable` sends the job to torchrun)."""
        assert self.request.hot_start is not None
        starter = HotStarter(self.request.hot_start, self.request.environment.venv)
        for node in nodes:
            parse_node(node.argv)  # refuse before anything starts
            starter.check(envs[node.step])
        started: list[tuple[NodeProcess, Handle]] = []
        try:
            for node in nodes:
                with open(self.record.log_path(node.step), "ab", buffering=0) as log:
                    handle = starter.start(node, envs[node.step], log)
                started.append((node, handle))
                self.procs[handle.pid] = (node.step, handle)  # a stop from now on stops it too
        except HotStartUnavailable:
            for _node, handle in started:
                self.procs.pop(handle.pid, None)
                killpg(handle.pid, signal.SIGKILL)
                handle.wait()
            raise
        how = (
            "a new hot-start server (it imported the environment's packages)"
            if starter.started_zygote
            else ("the environment's running hot-start server")
        )
        self.event(
            self.record.name, Reason.HOT_STARTED, f"nodes forked by {how}, not started with torchrun", "TrainJob"
        )
        for node, handle in started:
            self._node_started(node, handle, f"hot start of {' '.join(node.argv)}")
        self.save(status=JobStatus.RUNNING, message=None)
        return True

    def wait_nodes(self) -> None:
        from kubeflow_trainer.logclock import LogClock

        clock = LogClock([self.record.log_path(node.step) for node in self.request.nodes]).start()
        try:
            self._wait_nodes()
        finally:
            clock.stop()

    def _wait_nodes(self) -> None:
        failed: str | None = None
        while self.procs:
            step, code = self._reap_next()
            node_status = JobStatus.COMPLETE if code == 0 else JobStatus.FAILED
            message = None if code == 0 else self._exit_message(step, code, failed)
            cause = self._root_cause(step) if code != 0 and failed is None else None
            if cause:
                message = cause
            self.node_state(step, status=node_status, exit_code=code, finished=now_iso(), message=message)
            self.event(step, Reason.EXITED, f"{step} exited with code {code}")
            if code != 0 and failed is None:
                failed = step
                # Failed is final as soon as one node fails: record it before stopping the others.
                self.save(status=JobStatus.FAILED, message=f"{step} failed: {message}")
                self.stop_nodes(f"stopped because {step} failed")
        if failed:
            self.finish(JobStatus.FAILED, Reason.NODE_FAILED, self.state.get("message") or f"{failed} failed")
        else:
            self.finish(JobStatus.COMPLETE, Reason.COMPLETED, "all nodes exited with code 0")

    def _reap_next(self) -> tuple[str, int]:
        """Wait for the next of our step processes to exit: its step and exit code."""
        import selectors

        while True:
            for pid, (step, proc) in list(self.procs.items()):
                code = proc.poll()
                if code is not None:
                    del self.procs[pid]
                    # What the step left in its group: a SIGKILLed torchrun agent leaves its workers running.
                    killpg(pid, signal.SIGKILL)
                    return step, code
            with selectors.DefaultSelector() as sel:
                for pid, (_step, proc) in self.procs.items():
                    sel.register(proc.fileno(), selectors.EVENT_READ, pid)
                sel.select(timeout=1.0)

    def _root_cause(self, step: str) -> str | None:
        """The user's exception as the node's torchrun recorded it in its error file (the rank that failed
        first), else the last traceback in the node's log."""
        from kubeflow_trainer.rootcause import from_log, parse_error_file

        try:
            with open(self.record.error_path(step)) as fh:
                found = parse_error_file(fh.read())
        except OSError:
            found = None
        if found is None:
            found = from_log(self._tail(self.record.log_path(step), 200).splitlines())
        return found.describe() if found else None

    @staticmethod
    def _exit_message(step: str, code: int, failed: str | None) -> str:
        from kubeflow_trainer.rootcause import exit_reason

        if failed and failed != step:
            return f"stopped because {failed} failed"
        return exit_reason(code)

    def stop_nodes(self, why: str) -> None:
        """SIGTERM every running node's process group, SIGKILL after the grace period, reap them."""
        if not self.procs:
            return
        signal.alarm(0)
        for _step, proc in self.procs.values():
            killpg(proc.pid, signal.SIGTERM)
        end = time.monotonic() + self.grace
        while self.procs and time.monotonic() < end:
            for pid, (_step, proc) in list(self.procs.items()):
                code = proc.poll()
                if code is not None:
                    self._record_stopped(pid, code, why)
            time.sleep(0.05)
        for pid, (_step, proc) in list(self.procs.items()):
            killpg(pid, signal.SIGKILL)
            self._record_stopped(pid, proc.wait(), why)

    def _record_stopped(self, pid: int, code: int, why: str) -> None:
        step, _proc = self.procs.pop(pid)
        killpg(pid, signal.SIGKILL)  # anything left in the node's group (workers that ignored SIGTERM)
        target = self.state["nodes"].get(step) or self.state["initializers"][step]
        target.update(status=JobStatus.FAILED, exit_code=code, finished=now_iso(), message=why)
        self.record.write_state(self.state)
        self.event(step, Reason.STOPPED, f"{step} stopped ({why}), exit code {code}")

    def finish(self, status: JobStatus, reason: Reason, message: str) -> None:
        signal.alarm(0)
        # Nothing of an ended job keeps running: torchrun starts its workers in sessions of their own, so a
        # worker whose agent was SIGKILLed is outside every group stopped above; the job's uid finds it.
        sweep(self.request.uid)
        for node in [*self.state["nodes"].values(), *self.state.get("initializers", {}).values()]:
            if status_of(node) not in TERMINAL:
                node.update(status=JobStatus.FAILED, message=message)
        self.save(
            status=status,
            message=None if status == JobStatus.COMPLETE else message,
            finished=now_iso(),
            preparation=None,
        )
        self.event(self.record.name, reason, message, "TrainJob")


def sweep(uid: str | None) -> None:
    """SIGKILL every process whose environment carries the job's uid (:data:`UID_ENV`)."""
    import psutil

    if not uid:
        return
    marker = f"{UID_ENV}={uid}".encode()
    killed = []
    for proc in psutil.process_iter(["pid"]):
        try:
            with open(f"/proc/{proc.pid}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0"):
                    proc.kill()
                    killed.append(proc)
        except (OSError, psutil.Error):
            continue
    psutil.wait_procs(killed, timeout=5)  # gone (or zombies) when this returns, not merely signalled


def killpg(pgid: int, sig: int) -> None:
    """Signal a process group; a group that is already gone is not an error."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: list[str]) -> int:
    """Entry point: ``python -m kubeflow_trainer_local.supervisor <state_dir> <job>``."""
    state_dir, name, *rest = argv
    supervisor = Supervisor(state_dir, name)
    if rest:  # "<fd>:<path>": the admission ticket the client took at submission, locked
        fd, path = rest[0].split(":", 1)
        supervisor.ticket = AdmissionQueue(admission_dir(state_dir)).adopt(path, int(fd))
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
