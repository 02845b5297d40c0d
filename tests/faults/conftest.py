"""The fault table: fixtures that build a client per backend, count what the test's own jobs left behind, and
record one row per fault x backend.

Every count is scoped to the jobs the test itself submitted (their names, and a marker in the environment of
every process the test starts), because other users share the machine's engines: containers, networks and
volumes by their ``trainjob-name`` label, processes by the marker, job records by name, venvs as half-built
cache entries of the test's jobs, Secrets by the job label. At the end of the session the table is printed and
written to ``.faults/results.md`` (and ``.json``); the README summarises it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from kubeflow_trainer import TrainerClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # support/
from support.plane import K8S_LOCK, locked, started_plane

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / ".faults"
TEST_IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
PODMAN_URL = os.environ.get("KFT_PODMAN_HOST", "unix:///run/podman/podman.sock")
CLI = {"docker": ["docker"], "podman": ["podman", "--remote", "--url", PODMAN_URL]}
JOB_LABEL = "trainer.kubeflow.org/trainjob-name"
SCOPE_ENV = "KFT_FAULT_SCOPE"
"""Set in the test process (and so in every supervisor, node and client it starts): marks the test's processes."""
LEAK_KINDS = ("containers", "networks", "volumes", "processes", "venvs", "records", "secrets")
NOT_CREATED = {
    "local": {"containers", "networks", "volumes", "secrets"},
    "docker": {"venvs", "records", "secrets"},
    "podman": {"venvs", "records", "secrets"},
    "kubernetes": {"containers", "networks", "volumes", "venvs", "records"},
}
"""Object kinds a backend never creates (shown as n/a in the table, counted as 0)."""


def cli(engine: str, *args: str, check: bool = True) -> str:
    """The engine's own CLI, independent of the SDK under test."""
    return subprocess.run([*CLI[engine], *args], capture_output=True, text=True, check=check).stdout


def backend_config(backend: str, tmp_path: Path, **overrides: Any) -> Any:
    """A config for ``backend``: local keeps its records under ``tmp_path`` and shares the machine's env cache."""
    if backend == "local":
        from kubeflow_trainer_local import LocalProcessBackendConfig
        from kubeflow_trainer_local.config import default_cache_dir

        settings: dict[str, Any] = {
            "state_dir": str(tmp_path / "state"),
            "cache_dir": os.environ.get("KFT_TEST_ENV_CACHE") or default_cache_dir(),
            "stop_grace_seconds": 2,
        }
        return LocalProcessBackendConfig(**{**settings, **overrides})
    settings = {"image": TEST_IMAGE, "pull_policy": "Never", "stop_timeout": 2, **overrides}
    if backend == "kubernetes":  # the test passes the plane's kubeconfig and its namespace
        from kubeflow_trainer_k8s import KubernetesBackendConfig

        return KubernetesBackendConfig(**overrides)
    if backend == "docker":
        from kubeflow_trainer_docker import DockerBackendConfig

        return DockerBackendConfig(**settings)
    from kubeflow_trainer_podman import PodmanBackendConfig

    return PodmanBackendConfig(**{"host": PODMAN_URL, **settings})


def require_backend(backend: str) -> None:
    """Fail (never skip) with the setup hint when an engine or the test image is missing."""
    if backend in ("local", "kubernetes"):  # the plane fixture fails with up.sh's reason
        return
    probe = subprocess.run([*CLI[backend], "image", "inspect", TEST_IMAGE], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.fail(
            f"{backend} or the test image {TEST_IMAGE} is missing ({probe.stderr.strip()}); run "
            "scripts/containers/setup-engines.sh && scripts/containers/build-test-image.sh",
            pytrace=False,
        )


def marked_processes(marker: str, variable: str = SCOPE_ENV) -> list[psutil.Process]:
    """Live processes (not this one, not zombies) whose environment carries ``variable=marker``."""
    needle = f"{variable}={marker}".encode()
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            with open(f"/proc/{proc.pid}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0") and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


KINDS = {"containers": ["ps", "-a"], "networks": ["network", "ls"], "volumes": ["volume", "ls"]}


def job_owners(engine: str, kind: str, running_only: bool = False) -> list[str]:
    """The ``trainjob-name`` label of every labelled object of ``kind`` on ``engine`` (one per object)."""
    listing = KINDS[kind][:1] if running_only else KINDS[kind]  # `ps` without -a: running containers only
    args = [*listing, "--filter", f"label={JOB_LABEL}"]
    if engine == "podman" and kind == "networks":  # its network templates see labels as a list
        return [n.get("labels", {}).get(JOB_LABEL, "") for n in json.loads(cli(engine, *args, "--format", "json"))]
    label = f'{{{{ .Label "{JOB_LABEL}" }}}}' if engine == "docker" else f'{{{{ index .Labels "{JOB_LABEL}" }}}}'
    return cli(engine, *args, "--format", label).split()


@dataclass
class Scope:
    """What one test's jobs created, counted on the machine itself (not through the SDK)."""

    backend: str
    config: Any
    marker: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    names: set[str] = field(default_factory=set)

    def job_name(self, role: str) -> str:
        name = f"f-{role}-{self.marker}"[:63].rstrip("-")
        self.names.add(name)
        return name

    def _engine_objects(self) -> dict[str, int]:
        return {kind: sum(1 for owner in job_owners(self.backend, kind) if owner in self.names) for kind in KINDS}

    def _local_objects(self) -> dict[str, int]:
        from kubeflow_trainer_local.envcache import EnvironmentCache

        jobs = Path(self.config.state_dir) / "jobs"
        records = [jobs / n for n in self.names if (jobs / n).exists()]
        keys = set()
        for record in records:
            try:
                keys.add(json.loads((record / "request.json").read_text())["environment"]["key"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
        half_built = [e for e in EnvironmentCache(self.config.cache_dir).entries() if e.key in keys and not e.ready]
        return {"records": len(records), "venvs": len(half_built)}

    def _cluster_objects(self) -> dict[str, int]:
        """The Secrets of the test's jobs in its namespace (by the job label), read with the cluster's own API."""
        from kubernetes import client, config

        api = client.CoreV1Api(config.new_client_from_config(self.config.config_file))
        try:
            secrets = api.list_namespaced_secret(self.config.namespace, label_selector=JOB_LABEL).items
        finally:
            api.api_client.close()
        return {"secrets": sum(1 for s in secrets if s.metadata.labels.get(JOB_LABEL) in self.names)}

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(LEAK_KINDS, 0)
        counts["processes"] = len(marked_processes(self.marker))
        if self.backend == "local":
            counts.update(self._local_objects())
        elif self.backend == "kubernetes":
            counts.update(self._cluster_objects())
        else:
            counts.update(self._engine_objects())
        return counts

    def running(self, job: str | None = None) -> int:
        """Processes (local) or running containers (engines) of the test's jobs, or of ``job`` alone; on
        Kubernetes the processes the test started (its pods run in the cluster)."""
        if self.backend == "kubernetes":
            return 0 if job else len(marked_processes(self.marker))
        if self.backend == "local":
            if job is None:
                return len(marked_processes(self.marker))
            from kubeflow_trainer_local.request import UID_ENV

            request = Path(self.config.state_dir) / "jobs" / job / "request.json"
            uid = json.loads(request.read_text())["uid"]
            return len(marked_processes(uid, UID_ENV))
        owners = job_owners(self.backend, "containers", running_only=True)
        running = sum(1 for owner in owners if owner in ({job} if job else self.names))
        return running if job else running + len(marked_processes(self.marker))

    def wait_until_stopped(self, timeout: float, job: str | None = None) -> float:
        """Seconds until nothing of the test's jobs (or of ``job``) runs any more (or ``timeout``)."""
        start = time.monotonic()
        while self.running(job) and time.monotonic() - start < timeout:
            time.sleep(0.25)
        return time.monotonic() - start


@pytest.fixture(scope="session")
def k8s_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The Kubernetes test control plane (scripts/k8s/), started once for the session's Kubernetes rows under
    the plane lock (fixed ports), stopped at the end."""
    run_dir = Path(os.environ.get("KFT_K8S_RUN_DIR") or tmp_path_factory.mktemp("k8s") / "run")
    with locked(K8S_LOCK), started_plane(run_dir) as status:
        yield status


@pytest.fixture
def k8s_settings(k8s_plane: dict[str, Any]) -> Iterator[dict[str, str]]:
    """``fault(..., "kubernetes", **k8s_settings)``: the plane's kubeconfig and a fresh namespace (deleted after)."""
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(str(k8s_plane["kubeconfig"])))
    name = f"faults-{uuid.uuid4().hex[:8]}"
    api.create_namespace({"metadata": {"name": name}})
    try:
        yield {"config_file": str(k8s_plane["kubeconfig"]), "namespace": name}
    finally:
        api.delete_namespace(name)
        api.api_client.close()


@dataclass
class Row:
    fault: str
    backend: str
    outcome: str = ""
    bystander: str = ""
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    passed: bool = False
    xfail: str = ""


ROWS: list[Row] = []


@pytest.fixture
def fault(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``fault(name, backend)`` -> (scope, client, row): counts before, deletes the test's jobs and counts
    again after the test, asserts nothing is left and records the row."""
    made: list[tuple[Scope, TrainerClient, Row]] = []

    def start(name: str, backend: str, **config: Any) -> tuple[Scope, TrainerClient, Row]:
        require_backend(backend)
        scope = Scope(backend, backend_config(backend, tmp_path, **config))
        monkeypatch.setenv(SCOPE_ENV, scope.marker)
        row = Row(name, backend)
        xfail = request.node.get_closest_marker("xfail")
        row.xfail = str(xfail.kwargs.get("reason", "")) if xfail else ""
        client = TrainerClient(scope.config)
        row.before = scope.counts()
        made.append((scope, client, row))
        return scope, client, row

    yield start
    for scope, client, row in made:
        existing = {j.name for j in client.list_jobs()}
        for name in sorted(scope.names & existing):
            client.delete_job(name)  # the user's cleanup: after it nothing of the job may remain
        scope.wait_until_stopped(30)
        row.after = scope.counts()
        client.close()
        report = getattr(request.node, "rep_call", None)
        row.passed = bool(report and report.passed)
        ROWS.append(row)
        left = {k: v for k, v in row.after.items() if v}
        if row.xfail and not row.passed:  # a declared xfail row: its counts are printed in the table, not asserted
            continue
        procs = [(p.pid, " ".join(p.cmdline()[:3])) for p in marked_processes(scope.marker)] if left else []
        assert not left, f"{row.fault} on {row.backend} left behind {left} {procs} (before: {row.before})"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def _cell(row: Row, kind: str) -> str:
    if kind in NOT_CREATED.get(row.backend, set()):
        return "n/a"
    return f"{row.before.get(kind, 0)}→{row.after.get(kind, '?')}"


def table(rows: list[Row]) -> str:
    head = ["fault", "backend", "outcome", "bystander", *LEAK_KINDS, "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in sorted(rows, key=lambda r: (r.fault, r.backend)):
        result = "pass" if row.passed else ("xfail: " + row.xfail if row.xfail else "FAIL")
        cells = [row.fault, row.backend, row.outcome, row.bystander or "-", *(_cell(row, k) for k in LEAK_KINDS)]
        lines.append("| " + " | ".join([*cells, result]) + " |")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    RESULTS.mkdir(exist_ok=True)
    text = table(ROWS)
    (RESULTS / "results.md").write_text(
        "Fault table (leak columns: objects of the test's own jobs before → after; n/a: the backend never "
        "creates that kind)\n\n" + text + "\n"
    )
    (RESULTS / "results.json").write_text(json.dumps([r.__dict__ for r in ROWS], indent=1))
    terminalreporter.write_sep("=", "fault table")
    terminalreporter.write_line(text)


Probe = Callable[[], bool]


def wait_for(probe: Probe, timeout: float, what: str) -> float:
    """Poll ``probe`` until true; fail saying ``what`` did not happen."""
    start = time.monotonic()
    while not probe():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - start
