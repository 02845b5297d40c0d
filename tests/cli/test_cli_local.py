"""Every command of ``kubeflow-trainer`` against the real local backend (torchrun, cached environments):
output and exit codes."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from conftest import run_cli, unique

JOBS = "tests/cli/jobs.py"


def test_quickstart_two_nodes_follow_prints_both_ranks(local_args: list[str]) -> None:
    result = run_cli(
        "run", "examples/quickstart.py:train", *local_args, "--nodes", "2", "--arg", "epochs=2", "--follow"
    )
    assert result.code == 0, result
    for rank in (0, 1):
        assert f"rank {rank}/2 epoch 1 mean loss" in result.out, result.out
    assert "[node-0] rank 0/2" in result.out and "[node-1] rank 1/2" in result.out
    assert ": Complete" in result.err


def test_failing_function_exits_1_naming_the_exception(local_args: list[str]) -> None:
    result = run_cli("run", f"{JOBS}:boom", *local_args, "--follow")
    assert result.code == 1, result
    assert "ValueError: the learning rate is negative" in result.both
    assert "failed" in result.err and result.err.startswith("started ")


def test_job_lifecycle_every_command(local_args: list[str]) -> None:
    name = unique("cli")
    started = run_cli(
        "run",
        f"{JOBS}:hello",
        *local_args,
        "--name",
        name,
        "--nodes",
        "2",
        "--arg",
        "greeting=hi",
        "--arg",
        "times=2",
        "--env",
        "EXTRA=1",
        "--label",
        "team=cli",
        "-o",
        "json",
    )
    assert started.code == 0, started
    assert started.json() == {"name": name, "backend": "local"}

    waited = run_cli("wait", name, *local_args, "--timeout", "600")
    assert waited.code == 0 and f"{name}: Complete" in waited.err, waited

    listed = run_cli("list", *local_args)
    assert listed.code == 0 and name in listed.out and "Complete" in listed.out and "2 Complete" in listed.out
    assert listed.out.splitlines()[0].split() == ["NAME", "STATUS", "RUNTIME", "NODES", "STEPS", "CREATED"]
    as_json = run_cli("list", *local_args, "-o", "json").json()
    assert [j["name"] for j in as_json] == [name] and as_json[0]["status"] == "Complete"

    got = run_cli("get", name, *local_args)
    assert got.code == 0 and "status:  Complete" in got.out and "team=cli" in got.out, got
    assert "node-0" in got.out and "node-1" in got.out
    assert run_cli("get", name, *local_args, "-o", "json").json()["num_nodes"] == 2

    assert run_cli("logs", name, *local_args).out.splitlines() == ["hi 0 from rank 0", "hi 1 from rank 0"]
    assert run_cli("logs", name, *local_args, "--step", "node-1", "--tail", "1").out.splitlines() == [
        "hi 1 from rank 1"
    ]
    every = run_cli("logs", name, *local_args, "--all", "-f").out.splitlines()
    assert {"[node-0] hi 1 from rank 0", "[node-1] hi 0 from rank 1"} <= set(every), every
    assert run_cli("logs", name, *local_args, "--step", "node-7").code == 3

    events = run_cli("events", name, *local_args)
    assert events.code == 0 and events.out.splitlines()[0].split()[:3] == ["TIME", "OBJECT", "REASON"], events
    assert isinstance(run_cli("events", name, *local_args, "-o", "json").json(), list)

    words = ["kubeflow-trainer", "logs", *local_args, name[:5]]
    completed = run_cli(
        env={"_KUBEFLOW_TRAINER_COMPLETE": "bash_complete", "COMP_WORDS": " ".join(words), "COMP_CWORD": "6"}
    )
    assert f"plain,{name}" in completed.out.split(), completed  # job names complete from the backend

    deleted = run_cli("delete", name, *local_args)
    assert deleted.code == 0 and f"deleted {name}" in deleted.out
    assert run_cli("get", name, *local_args).code == 3
    gone = run_cli("delete", name, *local_args)
    assert gone.code == 3 and name in gone.err
    assert run_cli("list", *local_args, "-o", "json").json() == []


def test_wait_timeout_and_running(local_args: list[str]) -> None:
    name = unique("cli-sleep")
    assert run_cli("run", f"{JOBS}:sleepy", *local_args, "--name", name).code == 0
    try:
        running = run_cli("wait", name, *local_args, "--status", "Running", "--timeout", "600")
        assert running.code == 0 and f"{name}: Running" in running.out, running
        timed_out = run_cli("wait", name, *local_args, "--timeout", "1")
        assert timed_out.code == 6 and "did not reach" in timed_out.err, timed_out
    finally:
        assert run_cli("delete", name, *local_args).code == 0


def test_bad_input_exits_2_or_3_and_starts_nothing(local_args: list[str], tmp_path: Path) -> None:
    bad_config = run_cli("list", "--backend", "local", "--config", "no_such_setting=1")
    assert bad_config.code == 2 and "no_such_setting" in bad_config.err and "state_dir" in bad_config.err
    bad_type = run_cli("list", "--backend", "local", "--config", "stop_grace_seconds=-1")
    assert bad_type.code == 2 and "stop_grace_seconds" in bad_type.err

    missing_func = run_cli("run", f"{JOBS}:nope", *local_args)
    assert missing_func.code == 2 and "hello" in missing_func.err and "boom" in missing_func.err
    assert run_cli("run", "missing.py:train", *local_args).code == 2
    assert run_cli("run", f"{JOBS}:hello", *local_args, "--arg", "novalue").code == 2
    wrong_arg = run_cli("run", f"{JOBS}:hello", *local_args, "--arg", "colour=red")
    assert wrong_arg.code == 2 and "colour" in wrong_arg.err
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    imported = run_cli("run", f"{broken}:train", *local_args)
    assert imported.code == 2 and "ModuleNotFoundError" in imported.err
    unsupported = run_cli("run", *local_args, "--image", "python:3", "--", "python", "-c", "print(1)")
    assert unsupported.code == 2 and "container-trainer" in unsupported.err, unsupported
    assert run_cli("run", *local_args, "--", "python").code == 2  # no image, no file
    assert run_cli("run", f"{JOBS}:hello", *local_args, "--runtime", "no-such-runtime").code == 3
    assert run_cli("logs", "no-such-job", *local_args).code == 3
    assert run_cli("wait", "no-such-job", *local_args).code == 3
    assert run_cli("events", "no-such-job", *local_args).code == 3
    assert run_cli("list", "--backend", "no-such-backend").code == 5
    assert run_cli("list", *local_args, "-o", "json").json() == []  # nothing was started


def test_dry_run_prints_the_request_and_creates_nothing(local_args: list[str]) -> None:
    result = run_cli("run", f"{JOBS}:hello", *local_args, "--nodes", "2", "--dry-run", "-o", "json")
    assert result.code == 0, result
    data = result.json()
    assert data["backend"] == "local" and data["request"]["num_nodes"] == 2
    text = run_cli("run", f"{JOBS}:hello", *local_args, "--dry-run")
    assert text.out.startswith("# dry run on backend 'local': LocalJobRequest for job ")
    assert run_cli("list", *local_args, "-o", "json").json() == []


def test_backends_runtimes_doctor_help_completion(local_args: list[str]) -> None:
    backends = run_cli("backends", "-o", "json").json()
    local = next(b for b in backends if b["name"] == "local")
    assert (
        local["distribution"] == "trainer-backend-local" and local["version"] and "multi-node" in local["capabilities"]
    )
    table = run_cli("backends")
    assert table.code == 0 and table.out.splitlines()[0].split()[:3] == ["NAME", "DISTRIBUTION", "VERSION"]
    runtimes = run_cli("runtimes", *local_args)
    assert runtimes.code == 0 and "torch-distributed" in runtimes.out
    assert run_cli("runtimes", *local_args, "-o", "json").json()[0]["name"] == "torch-distributed"
    doctor = run_cli("doctor", *local_args)
    assert doctor.code == 0 and "Python for job environments" in doctor.out, doctor
    checks = run_cli("doctor", "--backend", "local", "-c", "python=/no/such/python", "-o", "json").json()
    assert checks["ok"] is False
    assert any(c["status"] == "fail" and "python=" in c["fix"] for c in checks["checks"]), checks

    helped = run_cli("--help")
    assert helped.code == 0 and "Exit codes" in helped.out
    for command in ("backends", "runtimes", "run", "list", "get", "logs", "events", "wait", "delete", "doctor"):
        assert command in helped.out
        assert run_cli(command, "--help").code == 0
    assert "_KUBEFLOW_TRAINER_COMPLETE" in run_cli("completion", "bash").out
    completed = run_cli(
        env={"_KUBEFLOW_TRAINER_COMPLETE": "bash_complete", "COMP_WORDS": "kubeflow-trainer lo", "COMP_CWORD": "1"}
    )
    assert "plain,logs" in completed.out.split(), completed
    backends_completed = run_cli(
        env={
            "_KUBEFLOW_TRAINER_COMPLETE": "bash_complete",
            "COMP_WORDS": "kubeflow-trainer list --backend lo",
            "COMP_CWORD": "3",
        }
    )
    assert "plain,local" in backends_completed.out.split(), backends_completed


def _dist(root: Path, dist: str, module: str, ep_name: str, body: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[kubeflow_trainer.backends]\n{ep_name} = {module}\n")


DUP = """
from kubeflow_trainer import BackendConfig, BackendSpec, hookimpl
from kubeflow_trainer_local.plugin import _factory

class C(BackendConfig):
    pass

@hookimpl
def trainer_register_backends(register):
    register(BackendSpec(name="dup", config_class=C, factory=_factory))
"""


def test_backends_lists_broken_plugins_and_conflicts(tmp_path: Path) -> None:
    """Real distributions on sys.path: one whose plugin fails to import, two registering the same name."""
    _dist(tmp_path, "broken-backend", "broken_plugin", "broken", "import no_such_sdk_module\n")
    _dist(tmp_path, "dup-one", "dup_one", "dup", DUP)
    _dist(tmp_path, "dup-two", "dup_two", "dup", DUP)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    rows = run_cli("backends", "-o", "json", env=env).json()
    broken = next(r for r in rows if r["name"] == "broken")
    assert broken["distribution"] == "broken-backend" and "no_such_sdk_module" in broken["problem"]
    dups = [r for r in rows if r["name"] == "dup"]
    assert {r["distribution"] for r in dups} == {"dup-one", "dup-two"} and "conflict" in dups[0]["problem"]
    assert any(r["name"] == "local" and not r["problem"] for r in rows)
    table = run_cli("backends", env=env)
    assert table.code == 0 and "PROBLEM" in table.out and "failed to load" in table.out
    assert run_cli("list", "--backend", "broken", env=env).code == 5
    conflict = run_cli("list", "--backend", "dup", env=env)
    assert conflict.code == 5 and "dup-one" in conflict.err and "dup-two" in conflict.err


def test_kubernetes_doctor_without_a_cluster_says_how_to_fix(tmp_path: Path) -> None:
    """The real Kubernetes client with a kubeconfig pointing at nothing: each failing check has its fix."""
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        textwrap.dedent(
            """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
            users: [{name: u, user: {token: t}}]
            contexts: [{name: nowhere, context: {cluster: c, user: u, namespace: ns}}]
            current-context: nowhere
            """
        )
    )
    result = run_cli("doctor", "--backend", "kubernetes", "-o", "json", env={"KUBECONFIG": str(kubeconfig)})
    assert result.code == 4, result
    checks = {c["name"]: c for c in result.json()["checks"]}
    assert checks["kube context"]["status"] == "ok" and "nowhere" in checks["kube context"]["detail"]
    server = checks["API server https://127.0.0.1:9 reachable"]
    assert server["status"] == "fail" and server["fix"]
    missing = run_cli("doctor", "--backend", "kubernetes", env={"KUBECONFIG": str(tmp_path / "none")})
    assert missing.code == 4 and "KUBECONFIG" in missing.out


def test_run_ships_a_workspace(local_args: list[str], tmp_path: Path) -> None:
    """``run --workspace``: the function's file imports a module of its project and reads a config file by a
    relative path; ignored and excluded files do not ship; the pattern flags need --workspace."""
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "helpers.py").write_text("def scale(x):\n    return 10 * x\n")  # the project's root is importable
    (project / "config.json").write_text('{"factor": 4}\n')
    (project / ".gitignore").write_text("secret.txt\n")
    (project / "secret.txt").write_text("no\n")
    (project / "big.ckpt").write_text("no\n")
    (project / "src" / "train.py").write_text(
        textwrap.dedent(
            """
            def main():
                import json, os
                from helpers import scale
                factor = json.load(open("config.json"))["factor"]
                shipped = sorted(p for p in ("secret.txt", "big.ckpt", "config.json") if os.path.exists(p))
                print("WORKSPACE", scale(factor), shipped, flush=True)
            """
        )
    )
    result = run_cli(
        "run",
        f"{project / 'src' / 'train.py'}:main",
        *local_args,
        "--workspace",
        str(project),
        "--exclude",
        "*.ckpt",
        "--follow",
    )
    assert result.code == 0, result
    assert "WORKSPACE 40 ['config.json']" in result.out, result.out
    stray = run_cli("run", f"{project / 'src' / 'train.py'}:main", *local_args, "--exclude", "*.ckpt")
    assert stray.code == 2 and "--exclude apply to --workspace DIR" in stray.err, stray
    missing = run_cli("run", f"{project / 'src' / 'train.py'}:main", *local_args, "--workspace", str(tmp_path / "no"))
    assert missing.code == 2 and "is not a directory" in missing.err, missing
