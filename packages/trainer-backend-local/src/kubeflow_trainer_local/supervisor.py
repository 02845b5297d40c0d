"""The per-job supervisor: a detached process that prepares the environment, runs the nodes and records
what happens, so the job keeps running and keeps its record when the client exits.

Started by ``train()`` as ``python -m kubeflow_trainer_local.supervisor <state_dir> <job>`` in a session of
its own. Each node (one ``torchrun`` per node) also gets a session, so stopping a node kills its whole
process tree (torchrun and its workers) through the process group. When a node fails, the supervisor
stops the other nodes and marks the job Failed. SIGTERM (``delete_job``) stops every node.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from kubeflow_trainer_local.store import JobRecord, now_iso

SECRET_PREFIX = "KFT_STEP_SECRET__"
STATUS_DIR = ".kft/steps"


class _Stop(Exception):
    """Raised in the main thread by the signal handlers."""

    def __init__(self, reason: str, message: str) -> None:
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


def _replace_port(node: dict[str, Any], old: int, new: int) -> None:
    node["argv"] = [f"--master-port={new}" if a == f"--master-port={old}" else a for a in node["argv"]]
    if node["env"].get("PET_MASTER_PORT") == str(old):
        node["env"]["PET_MASTER_PORT"] = str(new)


class Supervisor:
    """Runs one job to completion."""

    def __init__(self, state_dir: str, name: str) -> None:
        self.record = JobRecord(state_dir, name)
        self.request = self.record.request()
        self.state = self.record.state()
        self.procs: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
        self.grace = float(self.request.get("stop_grace_seconds", 5))

    # State helpers -----------------------------------------------------------------------------------
    def save(self, **changes: Any) -> None:
        self.state.update(changes)
        self.record.write_state(self.state)

    def node_state(self, step: str, **changes: Any) -> None:
        self.state["nodes"][step].update(changes)
        self.record.write_state(self.state)

    def event(self, obj: str, reason: str, message: str, kind: str = "Step") -> None:
        self.record.add_event(kind, obj, reason, message)

    # Phases ------------------------------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        deadline = self.request.get("active_deadline_seconds")
        if deadline:
            signal.signal(signal.SIGALRM, self._on_deadline)
            signal.alarm(int(deadline))
        try:
            self.start_initializers()
            venv = self.prepare()  # the trainer's environment builds while the initializers download
            if self.wait_initializers():
                self.start_nodes(venv)
                self.wait_nodes()
        except _Stop as stop:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            self.stop_nodes(stop.message)
            self.finish("Failed", stop.reason, stop.message)
        except Exception as exc:  # a bug or an OS error: record it, never leave the job Running
            self.stop_nodes(f"supervisor error: {exc}")
            self.finish("Failed", "SupervisorError", f"{type(exc).__name__}: {exc}")
        return 0 if self.state.get("status") == "Complete" else 1

    def _on_signal(self, signum: int, _frame: Any) -> None:
        raise _Stop("Stopped", f"the job was stopped (signal {signal.Signals(signum).name})")

    def _on_deadline(self, _signum: int, _frame: Any) -> None:
        raise _Stop(
            "DeadlineExceeded",
            f"the job ran longer than activeDeadlineSeconds={self.request['active_deadline_seconds']}",
        )

    def prepare(self) -> str:
        from kubeflow_trainer_local.envcache import EnvironmentCache, EnvironmentError_

        env = self.request["environment"]
        spec = env_spec(env)
        cache = EnvironmentCache(env["cache_dir"])
        self.save(message="preparing the environment", environment="preparing")
        with open(self.record.log_path("environment"), "ab", buffering=0) as log:
            try:
                venv, reused, seconds = cache.ensure(spec, log)
            except EnvironmentError_ as exc:
                tail = self._tail(self.record.log_path("environment"), 15)
                raise _Stop(
                    "EnvironmentFailed",
                    f"preparing the environment ({' '.join(spec.requirements) or 'no packages'}) failed: {exc}."
                    f" Check packages_to_install / pip_index_urls. Installer output:\n{tail}",
                ) from exc
        self.save(environment="ready")
        if reused:
            self.event(self.record.name, "EnvironmentReused", f"reused cached environment {env['key']}", "TrainJob")
        else:
            self.event(
                self.record.name, "EnvironmentPrepared", f"built environment {env['key']} in {seconds:.1f}s", "TrainJob"
            )
        return venv

    # Initializers ------------------------------------------------------------------------------------
    def _secrets(self, step: str) -> dict[str, str]:
        prefix = f"{SECRET_PREFIX}{step.replace('-', '_').upper()}__"
        return {k[len(prefix) :]: v for k, v in os.environ.items() if k.startswith(prefix)}

    def init_state(self, step: str, **changes: Any) -> None:
        self.state["initializers"][step].update(changes)
        self.record.write_state(self.state)

    def start_initializers(self) -> None:
        """Prepare each initializer's environment and start its runner; they download in parallel."""
        from kubeflow_trainer_local.envcache import EnvironmentCache, EnvironmentError_

        inits = self.request.get("initializers") or []
        if not inits:
            return
        self.save(status="Running", message="initializing the dataset and model")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_PREFIX)}
        base_env.pop("PYTHONHOME", None)
        base_env["PYTHONUNBUFFERED"] = "1"
        for init in inits:
            step = init["step"]
            self.init_state(step, status="Running", started=now_iso(), message="preparing its environment")
            cache = EnvironmentCache(init["environment"]["cache_dir"])
            with open(self.record.log_path(step), "ab", buffering=0) as log:
                try:
                    cache.ensure(env_spec(init["environment"]), log)
                except EnvironmentError_ as exc:
                    wanted = " ".join(init["environment"]["requirements"])
                    message = f"preparing the environment of {step} ({wanted}) failed: {exc}"
                    self.init_state(step, status="Failed", message=message, finished=now_iso())
                    self.event(step, "Failed", message)
                    continue
                proc = subprocess.Popen(
                    init["argv"],
                    cwd=self.request["workspace"],
                    env={**base_env, **self._secrets(step)},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.procs[proc.pid] = (step, proc)
            self.init_state(step, pid=proc.pid, create_time=process_identity(proc.pid), message=None)
            self.event(step, "Started", f"{step} started (pid {proc.pid}): fetching {init['source']}")

    def wait_initializers(self) -> bool:
        """Wait for the initializer steps; False (job Failed, nodes never started) when one failed."""
        inits = self.state.get("initializers") or {}
        failed = next((s for s, st in inits.items() if st.get("status") == "Failed"), None)
        if failed:
            self.stop_nodes(f"stopped because {failed} failed")
        while self.procs:
            step, code = self._reap_next()
            summary = self._summary(step)
            if code == 0:
                self.init_state(step, status="Complete", exit_code=0, finished=now_iso())
                self._cache_event(step, summary)
                self.event(
                    step,
                    "Completed",
                    f"{step} fetched {summary.get('files', '?')} files ({summary.get('bytes', '?')} bytes) in "
                    f"{summary.get('seconds', '?')}s",
                )
                continue
            message = summary.get("message") or self._exit_message(step, code, None)
            self.init_state(step, status="Failed", exit_code=code, finished=now_iso(), message=message)
            self.event(step, "Failed", f"{step} failed: {message}")
            if failed is None:
                failed = step
                self.save(status="Failed", message=f"{step} failed: {message}")
                self.stop_nodes(f"stopped because {step} failed")
        if failed is None:
            return True
        message = self.state["initializers"][failed].get("message") or "failed"
        for node in self.state["nodes"].values():
            node.update(status="Failed", message=f"not started because {failed} failed")
        self.finish("Failed", "InitializerFailed", f"{failed} failed: {message}")
        return False

    def _summary(self, step: str) -> dict[str, Any]:
        import json

        path = os.path.join(self.request["workspace"], STATUS_DIR, f"{step}.json")
        try:
            with open(path) as fh:
                return dict(json.load(fh))
        except (OSError, ValueError):
            return {}

    def _cache_event(self, step: str, summary: dict[str, Any]) -> None:
        init = next(i for i in self.request["initializers"] if i["step"] == step)
        if summary.get("cache") == "reused":
            message = f"reused cache {init['cache']!r}: {init['source']} was not downloaded again"
            self.event(step, "CacheReused", message)
        elif summary.get("cache") == "stored":
            self.event(step, "CacheStored", f"stored {init['source']} in cache {init['cache']!r}")

    @staticmethod
    def _tail(path: str, lines: int) -> str:
        try:
            with open(path, errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except OSError:
            return ""

    def start_nodes(self, venv: str) -> None:
        nodes = self.request["nodes"]
        port = self.request["rendezvous"]["master_port"]
        if port and not _port_free(port):
            new = free_port()
            for node in nodes:
                _replace_port(node, port, new)
            self.event(self.record.name, "PortReassigned", f"master port {port} was taken; using {new}", "TrainJob")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_PREFIX)}
        base_env.pop("PYTHONHOME", None)
        base_env["VIRTUAL_ENV"] = venv
        base_env["PATH"] = os.path.join(venv, "bin") + os.pathsep + base_env.get("PATH", "")
        base_env["PYTHONUNBUFFERED"] = "1"
        for node in nodes:
            step = node["step"]
            env = {**base_env, **node["env"]}
            cpus = node.get("cpus")
            with open(self.record.log_path(step), "ab", buffering=0) as log:
                proc = subprocess.Popen(
                    node["argv"],
                    cwd=self.request["workspace"],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=(lambda c=cpus: os.sched_setaffinity(0, c)) if cpus else None,  # noqa: PLW1509
                )
            self.procs[proc.pid] = (step, proc)
            self.state["nodes"][step].update(
                status="Running", pid=proc.pid, create_time=process_identity(proc.pid), started=now_iso()
            )
            self.event(step, "Started", f"{step} started (pid {proc.pid}): {' '.join(node['argv'])}")
        self.save(status="Running", message=None)

    def wait_nodes(self) -> None:
        failed: str | None = None
        while self.procs:
            step, code = self._reap_next()
            node_status = "Complete" if code == 0 else "Failed"
            message = None if code == 0 else self._exit_message(step, code, failed)
            self.node_state(step, status=node_status, exit_code=code, finished=now_iso(), message=message)
            self.event(step, "Exited", f"{step} exited with code {code}")
            if code != 0 and failed is None:
                failed = step
                # Failed is final as soon as one node fails: record it before stopping the others.
                self.save(status="Failed", message=f"{step} exited with code {code}")
                self.stop_nodes(f"stopped because {step} failed")
        if failed:
            self.finish("Failed", "NodeFailed", self.state.get("message") or f"{failed} failed")
        else:
            self.finish("Complete", "Completed", "all nodes exited with code 0")

    def _reap_next(self) -> tuple[str, int]:
        """Wait for the next of our step processes to exit: its step and exit code."""
        while True:
            pid, status = os.waitpid(-1, 0)
            if pid in self.procs:
                step, proc = self.procs.pop(pid)
                proc.returncode = os.waitstatus_to_exitcode(status)
                return step, proc.returncode

    @staticmethod
    def _exit_message(step: str, code: int, failed: str | None) -> str:
        if failed and failed != step:
            return f"stopped because {failed} failed"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def stop_nodes(self, why: str) -> None:
        """SIGTERM every running node's process group, SIGKILL after the grace period, reap them."""
        if not self.procs:
            return
        signal.alarm(0)
        for _step, proc in self.procs.values():
            killpg(proc.pid, signal.SIGTERM)
        end = time.monotonic() + self.grace
        while self.procs and time.monotonic() < end:
            for pid in list(self.procs):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    self._record_stopped(pid, os.waitstatus_to_exitcode(status), why)
            time.sleep(0.05)
        for pid in list(self.procs):
            killpg(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            self._record_stopped(pid, os.waitstatus_to_exitcode(status), why)

    def _record_stopped(self, pid: int, code: int, why: str) -> None:
        step, proc = self.procs.pop(pid)
        killpg(pid, signal.SIGKILL)  # anything left in the node's group (workers that ignored SIGTERM)
        proc.returncode = code
        target = self.state["nodes"].get(step) or self.state["initializers"][step]
        target.update(status="Failed", exit_code=code, finished=now_iso(), message=why)
        self.record.write_state(self.state)
        self.event(step, "Stopped", f"{step} stopped ({why}), exit code {code}")

    def finish(self, status: str, reason: str, message: str) -> None:
        signal.alarm(0)
        for node in [*self.state["nodes"].values(), *self.state.get("initializers", {}).values()]:
            if node.get("status") not in ("Complete", "Failed"):
                node.update(status="Failed", message=message)
        self.save(status=status, message=None if status == "Complete" else message, finished=now_iso())
        self.event(self.record.name, reason, message, "TrainJob")


def env_spec(env: dict[str, Any]) -> Any:
    """The EnvSpec of an environment entry of the request (``backend._environment`` is the inverse)."""
    from kubeflow_trainer_local.envcache import EnvSpec
    from kubeflow_trainer_local.pipconfig import PipSettings

    pip = env["pip"]
    return EnvSpec(
        python=env["python"],
        python_version=env["python_version"],
        requirements=tuple(env["requirements"]),
        pip=PipSettings(
            index_url=pip["index_url"],
            extra_index_urls=tuple(pip["extra_index_urls"]),
            find_links=tuple(pip["find_links"]),
            constraints=tuple(pip["constraints"]),
            no_index=pip["no_index"],
            cert=pip["cert"],
            sources=tuple(pip["sources"]),
        ),
        system_site_packages=env["system_site_packages"],
        installer=env["installer"],
    )


def killpg(pgid: int, sig: int) -> None:
    """Signal a process group; a group that is already gone is not an error."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: list[str]) -> int:
    """Entry point: ``python -m kubeflow_trainer_local.supervisor <state_dir> <job>``."""
    state_dir, name = argv
    return Supervisor(state_dir, name).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
