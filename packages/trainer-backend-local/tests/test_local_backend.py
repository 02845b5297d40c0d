"""Behaviour of the LocalProcess backend beyond the kit: real processes, real torchrun, real torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import local_jobs as jobs
import psutil
import pytest

from kubeflow_trainer import (
    AlreadyExistsError,
    CustomTrainer,
    InvalidRequestError,
    JobFailedError,
    Name,
    TrainerClient,
    UnsupportedFeatureError,
)
from kubeflow_trainer_local import LocalProcessBackendConfig
from kubeflow_trainer_local.envcache import EnvironmentCache, merge_requirements
from kubeflow_trainer_local.request import UID_ENV, LocalJobRequest


def job_processes(uid: str) -> list[psutil.Process]:
    """Every process on the machine whose environment carries the job's uid (walks the process table)."""
    marker = f"{UID_ENV}={uid}".encode()
    found = []
    for proc in psutil.process_iter():
        try:
            with open(f"/proc/{proc.pid}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0") and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def job_uid(config: LocalProcessBackendConfig, name: str) -> str:
    with open(os.path.join(config.state_dir, "jobs", name, "request.json")) as fh:
        return str(json.load(fh)["uid"])


@pytest.fixture
def client(local_config):
    with TrainerClient(local_config) as c:
        yield c


def test_two_node_allreduce_has_right_ranks_and_sum(client):
    name = client.train(trainer=CustomTrainer(func=jobs.allreduce, num_nodes=2, resources_per_node={"cpu": 1}))
    job = client.wait_for_job_status(name, timeout=300, polling_interval=0.5)
    assert [s.status for s in job.steps] == ["Complete", "Complete"]
    lines = {
        step: [x for x in client.get_job_logs(name, step=step) if x.startswith("RESULT")]
        for step in ("node-0", "node-1")
    }
    assert lines["node-0"] == ["RESULT rank=0 world=2 sum=3.0 node_rank=0"]
    assert lines["node-1"] == ["RESULT rank=1 world=2 sum=3.0 node_rank=1"]
    client.delete_job(name)


def test_processes_per_node_follow_cpu_request(client):
    name = client.train(trainer=CustomTrainer(func=jobs.allreduce, resources_per_node={"cpu": 2}))
    client.wait_for_job_status(name, timeout=300, polling_interval=0.5)
    results = sorted(x for x in client.get_job_logs(name) if x.startswith("RESULT"))
    assert results == ["RESULT rank=0 world=2 sum=3.0 node_rank=0", "RESULT rank=1 world=2 sum=3.0 node_rank=0"]
    client.delete_job(name)


def test_child_inherits_environment_and_cwd_is_untouched(client, monkeypatch):
    monkeypatch.setenv("KFT_FROM_CALLER", "inherited")
    cwd = os.getcwd()
    name = client.train(trainer=CustomTrainer(func=jobs.show_env, env={"KFT_FROM_JOB": "job"}))
    client.wait_for_job_status(name, timeout=300, polling_interval=0.2)
    assert os.getcwd() == cwd
    lines = list(client.get_job_logs(name))
    assert "CALLER=inherited JOB=job HOME-SET=True" in lines
    workdirs = [x for x in lines if x.startswith("CWD ")]
    assert workdirs and workdirs[0].endswith(os.path.join(name, "workspace"))
    client.delete_job(name)


def test_failing_node_fails_job_fast_and_stops_the_other(client):
    name = client.train(trainer=CustomTrainer(func=jobs.rank1_fails, num_nodes=2))
    client.wait_for_job_status(name, {"Running"}, timeout=300, polling_interval=0.1)
    # rank 1 fails 3 s after it starts; rank 0 would sleep 300 s.
    with pytest.raises(JobFailedError) as info:
        client.wait_for_job_status(name, timeout=300, polling_interval=2)
    raised_at = time.time()
    failed_at = [float(x.split()[1]) for x in client.get_job_logs(name, step="node-1") if x.startswith("FAILING-AT")]
    assert failed_at, "node-1 did not run"
    lag = raised_at - failed_at[0]
    # The behaviour, not a speed target: the job is known Failed long before node-0's 300 s sleep ends, and
    # with polling_interval=2 a client would see it within one poll on an idle machine. The bound leaves
    # room for a loaded 2-core machine; benchmarks/failure_lag.py prints the real figure.
    assert lag < 20, f"wait_for_job_status raised {lag:.2f}s after the node failed"
    assert "node-1" in str(info.value)
    job = client.get_job(name)
    assert job.steps[1].exit_code not in (0, None)
    uid = job_uid(client.backend.config, name)
    deadline = time.monotonic() + 15  # node-0 gets SIGTERM, then SIGKILL after the grace period
    while (job_processes(uid) or client.get_job(name).steps[0].status == "Running") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job_processes(uid) == []
    node0 = client.get_job(name).steps[0]
    assert node0.status == "Failed" and "node-1 failed" in (node0.message or "")
    client.delete_job(name)


def test_delete_running_two_node_job_leaves_no_process(client, local_config):
    name = client.train(trainer=CustomTrainer(func=jobs.sleep_forever, num_nodes=2))
    client.wait_for_job_status(name, {"Running"}, timeout=300, polling_interval=0.1)
    uid = job_uid(local_config, name)
    deadline = time.monotonic() + 120
    while len(job_processes(uid)) < 4 and time.monotonic() < deadline:  # 2 torchrun agents + 2 workers
        time.sleep(0.2)
    before = job_processes(uid)
    assert len(before) >= 4, [p.cmdline() for p in before]
    client.delete_job(name)
    assert job_processes(uid) == []
    assert not os.path.exists(os.path.join(local_config.state_dir, "jobs", name))
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in before)


def test_job_survives_its_client_being_killed(local_config, tmp_path):
    script = tmp_path / "client.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from kubeflow_trainer import CustomTrainer, Name, TrainerClient
        from kubeflow_trainer_local import LocalProcessBackendConfig
        import local_jobs as jobs
        client = TrainerClient(LocalProcessBackendConfig(state_dir={local_config.state_dir!r},
                                                         cache_dir={local_config.cache_dir!r}))
        client.train(trainer=CustomTrainer(func=jobs.sleep_then_print, func_args={{"seconds": 6}}),
                     options=[Name("survivor")])
        print("SUBMITTED", flush=True)
        time.sleep(600)
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "SUBMITTED"
    proc.kill()
    proc.wait()
    with TrainerClient(local_config) as other:
        assert other.get_job("survivor").status in ("Created", "Running")
        job = other.wait_for_job_status("survivor", timeout=300, polling_interval=0.2)
        assert job.status == "Complete"
        assert "DONE after 6" in list(other.get_job_logs("survivor"))
        other.delete_job("survivor")


def test_vanished_supervisor_marks_job_failed(client, local_config):
    name = client.train(trainer=CustomTrainer(func=jobs.sleep_forever))
    client.wait_for_job_status(name, {"Running"}, timeout=300, polling_interval=0.1)
    with open(os.path.join(local_config.state_dir, "jobs", name, "supervisor.json")) as fh:
        sup = json.load(fh)
    uid = job_uid(local_config, name)
    os.kill(sup["pid"], 9)  # a fault a real machine produces: the OOM killer or a reboot
    deadline = time.monotonic() + 10
    while client.get_job(name).status != "Failed" and time.monotonic() < deadline:
        time.sleep(0.1)
    job = client.get_job(name)
    assert job.status == "Failed"
    assert "supervisor" in (job.message or "")
    assert any(e.reason == "SupervisorLost" for e in client.get_job_events(name))
    assert job_processes(uid) == [], "the orphaned nodes of a lost job must be stopped"
    client.delete_job(name)


def test_concurrent_jobs_share_one_environment(local_config):
    config = local_config.model_copy(update={"cache_dir": os.path.join(local_config.state_dir, "fresh-cache")})
    client = TrainerClient(config)
    trainer = CustomTrainer(func=jobs.import_six, packages_to_install=["six"], pip_index_urls=None)
    names = []
    threads = [threading.Thread(target=lambda: names.append(client.train(trainer=trainer))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in names:
        assert client.wait_for_job_status(name, timeout=600, polling_interval=0.5).status == "Complete"
        assert any(line.startswith("SIX ") for line in client.get_job_logs(name))
    envs = EnvironmentCache(config.cache_dir).entries()
    assert len(envs) == 1 and envs[0].ready
    reasons = sorted(e.reason for n in names for e in client.get_job_events(n) if e.reason.startswith("Environment"))
    assert reasons == ["EnvironmentPrepared", "EnvironmentReused"]
    for name in names:
        client.delete_job(name)
    assert client.backend.prune_environments() == [envs[0].key]
    assert EnvironmentCache(config.cache_dir).entries() == []


def test_bad_package_fails_the_job_with_installer_output(client):
    name = client.train(trainer=CustomTrainer(func=jobs.import_six, packages_to_install=["kft-no-such-pkg-xyz==0.0.1"]))
    with pytest.raises(JobFailedError, match="kft-no-such-pkg-xyz"):
        client.wait_for_job_status(name, timeout=300, polling_interval=0.2)
    assert any(e.reason == "EnvironmentFailed" for e in client.get_job_events(name))
    client.delete_job(name)


def test_bad_input_leaves_no_directory_or_process(client, local_config):
    before_procs = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(InvalidRequestError, match="packages_to_install"):
        client.train(trainer=CustomTrainer(func=jobs.import_six, packages_to_install=["six", "Six>=1"]))
    with pytest.raises(InvalidRequestError, match="not a valid requirement"):
        client.train(trainer=CustomTrainer(func=jobs.import_six, packages_to_install=["six=="]))
    with pytest.raises(UnsupportedFeatureError, match="memory-limit"):
        client.train(trainer=CustomTrainer(func=jobs.import_six, resources_per_node={"memory": "1Gi"}))
    with pytest.raises(UnsupportedFeatureError, match="gpu"):
        client.train(trainer=CustomTrainer(func=jobs.import_six, resources_per_node={"gpu": 1}))
    with pytest.raises(InvalidRequestError, match="CPUs"):
        client.train(trainer=CustomTrainer(func=jobs.import_six, resources_per_node={"cpu": 512}))
    name = client.train(trainer=CustomTrainer(func=jobs.import_six), options=[Name("taken")])
    with pytest.raises(AlreadyExistsError, match="already exists"):
        client.train(trainer=CustomTrainer(func=jobs.import_six), options=[Name("taken")])
    jobs_root = os.path.join(local_config.state_dir, "jobs")
    assert sorted(os.listdir(jobs_root)) == ["taken"]
    client.delete_job(name)
    assert os.listdir(jobs_root) == []
    time.sleep(0.2)
    leftovers = {p.pid for p in psutil.Process().children(recursive=True)} - before_procs
    assert not [p for p in leftovers if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_user_code_is_never_shell_expanded(client):
    weird = "$HOME `echo hi` $(id) \"quotes\" 'single' \\ back"
    name = client.train(trainer=CustomTrainer(func=jobs.echo_arg, func_args={"text": weird}))
    client.wait_for_job_status(name, timeout=300, polling_interval=0.2)
    assert f"ARG {weird}" in list(client.get_job_logs(name))
    client.delete_job(name)


def test_dry_run_returns_the_supervisor_request(client):
    result = client.dry_run(trainer=CustomTrainer(func=jobs.allreduce, num_nodes=2), options=[Name("dry-one")])
    request = result.request
    assert isinstance(request, LocalJobRequest)
    assert [n.step for n in request.nodes] == ["node-0", "node-1"]
    argv = request.nodes[1].argv
    assert argv[0].endswith("/bin/torchrun") and "--nnodes=2" in argv and "--node-rank=1" in argv
    assert request.nodes[1].env["PET_NODE_RANK"] == "1"
    assert "torch" in request.environment.spec.requirements
    assert not os.path.exists(os.path.join(client.backend.config.state_dir, "jobs", "dry-one"))


def test_merge_requirements_user_overrides_runtime():
    assert merge_requirements(["torch", "numpy"], ["Torch==2.0", "six"]) == ["numpy", "six", "Torch==2.0"]


def test_environment_is_compiled_at_install_even_without_bytecode_writes(client, monkeypatch):
    """PYTHONDONTWRITEBYTECODE=1 (common in containers and CI) must not make every job compile torch again:
    the environment's packages are compiled when it is built."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    name = client.train(trainer=CustomTrainer(func=jobs.bytecode_report))
    client.wait_for_job_status(name, timeout=600, polling_interval=0.5)
    lines = [x for x in client.get_job_logs(name) if x.startswith("BYTECODE")]
    assert lines == ["BYTECODE probe=True compiled=True dont_write=1"], lines
    client.delete_job(name)
