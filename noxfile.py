"""Test sessions. `nox` runs them all; `nox -s core` runs one. Uses uv for fast environments."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
CORE = ROOT / "packages" / "trainer-core"
CONTAINERS = ROOT / "packages" / "trainer-containers"
LOCAL = ROOT / "packages" / "trainer-backend-local"
DOCKER = ROOT / "packages" / "trainer-backend-docker"
PODMAN = ROOT / "packages" / "trainer-backend-podman"
K8S = ROOT / "packages" / "trainer-backend-k8s"
EXAMPLE = ROOT / "examples" / "plugin-subprocess"
BACKENDS = [
    "trainer-containers",
    "trainer-backend-k8s",
    "trainer-backend-local",
    "trainer-backend-docker",
    "trainer-backend-podman",
]
PYTEST = ["pytest", "-ra", "-p", "no:cacheprovider"]
COVERAGE_DIR = ROOT / ".coverage-data"
"""Each test session writes its line coverage here (``.coverage.<session>``); the ``coverage`` session reports."""
DISTRIBUTIONS = {
    "trainer-core": "packages/trainer-core/src/*",
    "  initializers/runner.py": "packages/trainer-core/src/kubeflow_trainer/initializers/runner.py",
    "  client.py": "packages/trainer-core/src/kubeflow_trainer/client.py",
    "trainer-containers": "packages/trainer-containers/src/*",
    "trainer-backend-local": "packages/trainer-backend-local/src/*",
    "trainer-backend-docker": "packages/trainer-backend-docker/src/*",
    "trainer-backend-podman": "packages/trainer-backend-podman/src/*",
    "trainer-backend-k8s": "packages/trainer-backend-k8s/src/*",
    "example plugin": "examples/plugin-subprocess/src/*",
}
UNIT_SESSIONS = ("core", "containers")
PACKAGE_SESSIONS = ("core", "containers", "local", "docker", "podman", "k8s", "k8s_kubelet", "example_plugin")
INITIALIZER_TEST_DEPS = ["moto[server]", "boto3", "huggingface_hub"]
"""The initializer tests' servers (moto's S3) and clients (boto3 to fill it, huggingface_hub for the Hub
stand-in's own test). The jobs' initializer steps get their libraries from their own environment/image."""


def _engines() -> list[str]:
    """Editable installs of the container backends: trainer-containers and its Docker and Podman engines."""
    return ["-e", str(CONTAINERS), "-e", str(DOCKER), "-e", str(PODMAN)]


def install(session: nox.Session, *args: str) -> None:
    """Install into the session like pip does it (with bytecode), so import-time figures are what a user sees.

    Only these installs get ``UV_COMPILE_BYTECODE``: the tests' own processes must not inherit it, or the local
    backend's job environments would be compiled because of the test runner rather than by the backend."""
    session.install(*args, env={"UV_COMPILE_BYTECODE": "1"})


def pytest(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    """Run pytest with line coverage of every first-party package (pyproject's [tool.coverage]) recorded
    in ``.coverage-data/.coverage.<session>``. Code that runs in the jobs' own processes (supervisors,
    containers, pods) is not measured."""
    install(session, "pytest-cov")
    COVERAGE_DIR.mkdir(exist_ok=True)
    data = COVERAGE_DIR / f".coverage.{session.name}"
    data.unlink(missing_ok=True)
    session.run(
        *PYTEST, "--cov", "--cov-report=", *args, *session.posargs, env={"COVERAGE_FILE": str(data), **(env or {})}
    )


@nox.session
def core(session: nox.Session) -> None:
    """trainer-core alone, with no backend installed: its unit tests."""
    install(session, "-e", f"{CORE}[testing]", "hypothesis")
    pytest(session, str(CORE / "tests"))


@nox.session
def containers(session: nox.Session) -> None:
    """trainer-containers with no engine: the container backend's logic on its in-memory FakeEngine."""
    install(session, "-e", f"{CORE}[testing]", "-e", str(CONTAINERS))
    pytest(session, str(CONTAINERS / "tests"))


@nox.session
def local(session: nox.Session) -> None:
    """The LocalProcess backend: kit + backend tests with real torchrun and torch, hot starts on (default)."""
    install(session, "-e", f"{CORE}[testing]", "-e", str(LOCAL))
    pytest(session, str(LOCAL / "tests"))


@nox.session
def local_torchrun(session: nox.Session) -> None:
    """The same tests with hot starts off (``hot_starts=False``): every node started by torchrun."""
    install(session, "-e", f"{CORE}[testing]", "-e", str(LOCAL))
    pytest(session, str(LOCAL / "tests"), env={"KFT_TEST_HOT_STARTS": "0"})


@nox.session
def docker(session: nox.Session) -> None:
    """The Docker backend against the real engine (scripts/containers/ sets it up): kit + e2e tests."""
    install(session, "-e", f"{CORE}[testing]", "-e", str(CONTAINERS), "-e", str(DOCKER))
    pytest(session, str(DOCKER / "tests"))


@nox.session
def podman(session: nox.Session) -> None:
    """The Podman backend against the real Podman service (scripts/containers/ sets it up): the kit."""
    install(session, "-e", f"{CORE}[testing]", "-e", str(CONTAINERS), "-e", str(PODMAN))
    pytest(session, str(PODMAN / "tests"))


@nox.session
def k8s(session: nox.Session) -> None:
    """The Kubernetes backend against the local control plane (scripts/k8s/: built, started, stopped here)."""
    install(session, "-e", f"{CORE}[testing]", "-e", str(K8S))
    install(session, *INITIALIZER_TEST_DEPS)  # moto's S3 server and boto3: OutputStorage read back
    pytest(session, str(K8S / "tests"))


@nox.session
def k8s_kubelet(session: nox.Session) -> None:
    """The Kubernetes backend on a real kubelet (scripts/k8s/node-*.sh: built, started, stopped here; needs root
    and the torch test image in Docker): the kit with no execution xfails, multi-node rendezvous, log follow."""
    install(session, "-e", f"{CORE}[testing]", "-e", str(K8S))
    install(session, *INITIALIZER_TEST_DEPS)  # moto's S3 server for the Trainer's initializer images
    pytest(session, "--kubelet-tier", str(K8S / "tests" / "kubelet"))


@nox.session
def e2e(session: nox.Session) -> None:
    """End-to-end suites: container backends on both engines, one script on local/docker/podman, dataset and
    model initializers on local/docker/podman against real S3 (moto), HTTP and a Hub stand-in."""
    install(session, "-e", f"{CORE}[testing]", "-e", str(LOCAL), *_engines())
    install(session, *INITIALIZER_TEST_DEPS)
    pytest(session, str(ROOT / "tests" / "support"), str(ROOT / "tests" / "e2e"))


@nox.session
def cli(session: nox.Session) -> None:
    """The kubeflow-trainer command line against the real local, Docker and Podman backends (and the Kubernetes
    doctor with no cluster), and a notebook run by a real kernel (nbclient, ipykernel) showing jobs as tables."""
    install(session, "-e", f"{CORE}[testing]", "-e", str(LOCAL), *_engines(), "-e", str(K8S))
    install(session, "nbclient", "nbformat", "ipykernel")
    pytest(session, str(ROOT / "tests" / "cli"))


@nox.session(name="example_plugin")
def example_plugin(session: nox.Session) -> None:
    """The third-party example backend, pip-installed from its folder, passes the kit."""
    install(session, "-e", f"{CORE}[testing]")
    install(session, str(EXAMPLE))  # a real (non-editable) install, as a user would
    pytest(session, str(EXAMPLE / "tests"))


@nox.session
def conformance(session: nox.Session) -> None:
    """The kit over every installed backend (built-in and third-party) at once."""
    install(session, "-e", f"{CORE}[testing]", "-e", str(LOCAL), *_engines(), str(EXAMPLE))
    pytest(session, str(ROOT / "tests" / "conformance"))


@nox.session
def compat(session: nox.Session) -> None:
    """Upstream's documented examples, ported by the import rewrite, on the real local, Docker, Podman and
    Kubernetes backends, and the signature parity test against kubeflow==0.5.0 (its own venv in .bench/)."""
    install(
        session, "-e", f"{CORE}[testing]", *(f"-e{p}" for p in (LOCAL, CONTAINERS, DOCKER, PODMAN, K8S)), "uv", "pyyaml"
    )
    pytest(session, str(ROOT / "tests" / "compat"))


@nox.session
def coverage(session: nox.Session) -> None:
    """Line coverage per distribution from what the test sessions recorded: the engine-less unit tests
    (core, containers), the package sessions (each distribution's own tests, real engines included), and all
    suites."""
    install(session, "coverage[toml]")
    recorded = {p.name.removeprefix(".coverage."): p for p in COVERAGE_DIR.glob(".coverage.*")}
    if not recorded:
        session.error("no coverage recorded: run test sessions first (e.g. nox -s core local)")
    groups = {
        "unit (no engine)": [n for n in UNIT_SESSIONS if n in recorded],
        "package sessions": [n for n in PACKAGE_SESSIONS if n in recorded],
        "all suites": sorted(recorded),
    }
    totals: dict[str, dict[str, str]] = {}
    tmp = Path(session.create_tmp())
    for group, names in groups.items():
        combined = tmp / f"combined-{group.split()[0]}"
        combined.unlink(missing_ok=True)
        if not names:
            continue
        session.run(
            "coverage", "combine", "--keep", f"--data-file={combined}", *(str(recorded[n]) for n in names), silent=True
        )
        for label, include in DISTRIBUTIONS.items():
            out = session.run(
                "coverage",
                "report",
                f"--data-file={combined}",
                f"--include=*/{include}",
                "--format=total",
                "--ignore-errors",  # a file recorded before it moved (no source now) must not hide the row
                silent=True,
                success_codes=[0, 1],
            )
            text = str(out or "").strip().splitlines()
            totals.setdefault(label, {})[group] = (
                f"{text[-1]} %" if text and text[-1].replace(".", "", 1).isdigit() else "no data"
            )
    print(f"\nline coverage (sessions recorded: {', '.join(sorted(recorded))})")
    print(f"{'distribution':50s}" + "".join(f"{g:>18s}" for g in groups))
    for label, row in totals.items():
        print(f"{label:50s}" + "".join(f"{row.get(g, '-'):>18s}" for g in groups))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and format check."""
    install(session, "ruff")
    session.run("ruff", "check", "packages", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "packages", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on core, every backend and the example plugin."""
    install(
        session,
        "mypy",
        "pytest",
        "types-psutil",
        "types-requests",
        "-e",
        str(CORE),
        "-e",
        str(LOCAL),
        "-e",
        str(CONTAINERS),
        "-e",
        str(DOCKER),
        "-e",
        str(PODMAN),
        "-e",
        str(K8S),
        "-e",
        str(EXAMPLE),
    )
    session.run("mypy", *(str(p / "src") for p in (CORE, LOCAL, CONTAINERS, DOCKER, PODMAN, K8S, EXAMPLE)))


@nox.session
def packaging(session: nox.Session) -> None:
    """Build every wheel; install trainer-core alone, trainer-core[docker] and trainer-core[all] from them with
    no index."""
    dist = Path(session.create_tmp()) / "wheels"
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir(parents=True)
    # uv goes into the session too: `build --installer uv` and the installs below run it from the session's
    # PATH, and a new machine has no global uv (only .venv's, which nox does not put on PATH).
    install(session, "build", "pip", "uv")
    for folder in [CORE, *(ROOT / "packages" / b for b in BACKENDS), EXAMPLE]:
        session.run("python", "-m", "build", "--wheel", "--installer", "uv", "--outdir", str(dist), str(folder))
    # Third-party dependencies are fetched into the same folder first; then installs use no index at all.
    session.run(
        "python",
        "-m",
        "pip",
        "download",
        "--quiet",
        "--dest",
        str(dist),
        "--find-links",
        str(dist),
        "trainer-core[all]",
    )
    tmp = Path(session.create_tmp())
    for label, spec, check in (
        ("alone", "trainer-core", "core_alone"),
        ("docker", "trainer-core[docker]", "docker_extra"),
        ("all", "trainer-core[all]", "all_extras"),
    ):
        venv = tmp / f"venv-{label}"
        shutil.rmtree(venv, ignore_errors=True)
        session.run("uv", "venv", "--quiet", str(venv))
        py = str(venv / "bin" / "python")
        session.run(
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            py,
            "--no-index",
            "--find-links",
            str(dist),
            spec,
        )
        session.run(py, str(ROOT / "tests" / "packaging_check.py"), check, external=True)


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Print the benchmark figures (import time, discovery; local backend vs upstream with --upstream)."""
    install(session, "-e", str(CORE), "-e", str(LOCAL), str(EXAMPLE))
    upstream = ROOT / ".bench" / "upstream" / "bin" / "python"
    extra = ["--upstream-python", str(upstream)] if upstream.exists() else []
    session.run("python", str(ROOT / "benchmarks" / "import_and_discovery.py"), *extra)
    if os.environ.get("KFT_BENCH_LOCAL"):
        session.run("python", str(ROOT / "benchmarks" / "local_vs_upstream.py"), *session.posargs)


@nox.session
def faults(session: nox.Session) -> None:
    """The fault table (tests/faults/): node SIGKILL and OOM, supervisor, queue runner and client killed, engine
    restarted, disk full, same name at once, 50 jobs at once, on local, Docker and Podman; API server restarted
    and credentials on Kubernetes (the test control plane, scripts/k8s/, under its lock); bad input generated
    on a real backend; secrets never written. Prints the table and writes .faults/results.md."""
    install(session, "-e", f"{CORE}[testing]", "-e", str(LOCAL), *_engines(), "-e", str(K8S))
    install(session, "hypothesis", "psutil", *INITIALIZER_TEST_DEPS)
    pytest(session, str(ROOT / "tests" / "faults"))
