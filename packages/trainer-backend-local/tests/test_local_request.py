"""What a dry run shows is what runs: a real job's request file and its processes (read from the process
table: argv, environment, working directory, CPU affinity) match ``client.dry_run(...).request``.

Two renders of the same job legitimately differ in two values only: the job's uid (random per render, it marks
the job's processes) and the rendezvous port (a port free at render time). The comparison takes both from the
submitted job and requires everything else to be equal. Secrets are compared apart: the dry run holds them
redacted, the request file does not hold them at all, the step's process has them in its environment.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Any

import local_jobs as jobs
import psutil
import pytest

from kubeflow_trainer import (
    BackendError,
    CustomTrainer,
    HuggingFaceModelInitializer,
    Initializer,
    InvalidRequestError,
    Name,
    TrainerClient,
)
from kubeflow_trainer_local.request import SECRET_PREFIX, UID_ENV, LocalJobRequest, Process, secret_var
from kubeflow_trainer_local.store import JobRecord


@pytest.fixture
def client(local_config):
    with TrainerClient(local_config) as c:
        yield c


def environ_of(proc: psutil.Process) -> dict[str, str]:
    """The environment a process was started with, from ``/proc/<pid>/environ``."""
    with open(f"/proc/{proc.pid}/environ", "rb") as fh:
        entries = [e.decode() for e in fh.read().split(b"\0") if e]
    return dict(e.split("=", 1) for e in entries)


def job_processes(uid: str, timeout: float, count: int) -> list[psutil.Process]:
    """Processes carrying the job's uid whose parent does not (the ones the supervisor started), once there
    are ``count`` of them."""
    deadline = time.monotonic() + timeout
    found: list[psutil.Process] = []
    while time.monotonic() < deadline:
        found = []
        for proc in psutil.process_iter():
            try:
                if environ_of(proc).get(UID_ENV) != uid or proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                parent = proc.parent()
                if parent is None or environ_of(parent).get(UID_ENV) != uid:
                    found.append(proc)
            except (OSError, psutil.Error):
                continue
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{len(found)} of {count} job processes appeared within {timeout}s")


def supervisors_of(state_dir: str, name: str) -> list[psutil.Process]:
    """The supervisor processes of job ``name`` in the process table."""
    found = []
    for proc in psutil.process_iter():
        try:
            argv = proc.cmdline()
        except psutil.Error:
            continue
        if "kubeflow_trainer_local.supervisor" not in argv:
            continue
        at = argv.index("kubeflow_trainer_local.supervisor")
        if argv[at + 1 : at + 3] == [state_dir, name]:  # then the admission ticket it inherited
            found.append(proc)
    return found


def as_submitted(dry: LocalJobRequest, submitted: LocalJobRequest) -> dict[str, Any]:
    """``dry`` as JSON with the two values that differ per render (uid, free port) taken from ``submitted``."""
    data = dry.model_dump(mode="json")
    old, new = dry.rendezvous.master_port, submitted.rendezvous.master_port
    data["uid"] = submitted.uid
    data["rendezvous"]["master_port"] = new
    for process in [*data["nodes"], *data["initializers"]]:
        process["env"][UID_ENV] = submitted.uid
        if process["env"].get("PET_MASTER_PORT") == str(old):
            process["env"]["PET_MASTER_PORT"] = str(new)
        process["argv"] = [f"--master-port={new}" if a == f"--master-port={old}" else a for a in process["argv"]]
    return data


def exec_argv(argv: list[str]) -> list[str]:
    """The command line the kernel shows for ``argv``: a script's ``#!`` interpreter goes first."""
    with open(argv[0], "rb") as fh:
        first = fh.readline()
    if first.startswith(b"#!"):
        return [*first[2:].decode().split(), *argv]
    return argv


def assert_runs_as_requested(proc: psutil.Process, process: Process, supervisor_env: dict[str, str]) -> None:
    """The process runs ``process``: its argv, cwd, and the environment the request's rules give."""
    assert proc.cmdline() == exec_argv(process.argv)
    assert proc.cwd() == process.cwd
    env = environ_of(proc)
    for key, value in process.env.items():
        assert env[key] == value, key
    for key in process.unset_env:
        assert key not in env
    inherited = [k for k in supervisor_env if not k.startswith(SECRET_PREFIX) and k not in process.unset_env]
    for key in inherited:
        if key not in process.env and key != "PATH":
            assert env[key] == supervisor_env[key], key
    assert env["PATH"] == os.pathsep.join([*process.path_prepend, supervisor_env.get("PATH", "")])


def test_running_job_matches_its_dry_run(local_config, monkeypatch):
    """The torchrun path, read from the process table (hot starts off: a forked node's argv and
    ``/proc/<pid>/environ`` are its zygote's; test_hot_start compares what the forked workers see)."""
    local_config = local_config.model_copy(update={"hot_starts": False})
    client = TrainerClient(local_config)
    monkeypatch.setenv("KFT_FROM_CALLER", "inherited")
    trainer = CustomTrainer(
        func=jobs.sleep_forever, num_nodes=2, resources_per_node={"cpu": 1}, env={"KFT_FROM_JOB": "job"}
    )
    options = [Name("same-as-dry")]
    dry = client.dry_run(trainer=trainer, options=options).request
    assert isinstance(dry, LocalJobRequest)
    name = client.train(trainer=trainer, options=options)
    try:
        record = JobRecord(local_config.state_dir, name)
        with open(record.request_path, encoding="utf-8") as fh:
            submitted = LocalJobRequest.from_file_json(fh.read())
        assert submitted.uid != dry.uid  # two renders, two uids: the only values that differ, with the port
        assert submitted.model_dump(mode="json") == as_submitted(dry, submitted)

        # The workspace holds exactly the request's files.
        for rel, content in submitted.files.items():
            with open(os.path.join(submitted.layout.workspace, rel), encoding="utf-8") as fh:
                assert fh.read() == content, rel

        # The process table: the supervisor, then one torchrun per node as the request states it.
        (supervisor,) = supervisors_of(local_config.state_dir, name)
        *argv, ticket = supervisor.cmdline()
        assert argv == [sys.executable, "-m", "kubeflow_trainer_local.supervisor", local_config.state_dir, name]
        fd, _, ticket_path = ticket.partition(":")  # the admission ticket it inherited, locked, by descriptor
        assert fd.isdigit() and os.path.dirname(ticket_path).endswith(os.path.join("admission", "queue"))
        supervisor_env = environ_of(supervisor)
        assert supervisor_env["KFT_FROM_CALLER"] == "inherited"
        client.wait_for_job_status(name, {"Running"}, timeout=300, polling_interval=0.1)
        nodes = job_processes(submitted.uid, timeout=60, count=len(submitted.nodes))
        by_rank = {int(environ_of(p)["PET_NODE_RANK"]): p for p in nodes}
        assert sorted(by_rank) == [0, 1]
        for node in submitted.nodes:
            proc = by_rank[node.rank]
            assert_runs_as_requested(proc, node, supervisor_env)
            assert node.cpus is not None and proc.cpu_affinity() == node.cpus
            assert environ_of(proc)["KFT_FROM_JOB"] == "job"
            assert environ_of(proc)["VIRTUAL_ENV"] == submitted.environment.venv
            assert node.argv[0] == os.path.join(submitted.environment.venv, "bin", "torchrun")
    finally:
        client.delete_job(name)


@pytest.fixture
def silent_hub():
    """A Hugging Face endpoint that accepts connections and never answers: the model step keeps running."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_initializer_secret_reaches_only_its_step(local_config, monkeypatch, silent_hub):
    """Read from the process table, so the supervisor is a started process (hot starts off: a forked
    supervisor's argv and ``/proc/<pid>/environ`` are its zygote's)."""
    local_config = local_config.model_copy(update={"hot_starts": False})
    client = TrainerClient(local_config)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    token = "hf_secret_never_on_disk"
    initializer = Initializer(
        model=HuggingFaceModelInitializer(storage_uri="hf://org/tiny", endpoint=silent_hub, access_token=token)
    )
    trainer = CustomTrainer(func=jobs.sleep_forever)
    options = [Name("secret-step")]
    dry = client.dry_run(trainer=trainer, initializer=initializer, options=options).request
    (step,) = dry.initializers
    assert {k: v.get_secret_value() for k, v in step.secrets.items()} == {"KFT_INIT_HF_TOKEN": token}
    assert token not in repr(dry) and token not in dry.model_dump_json()
    name = client.train(trainer=trainer, initializer=initializer, options=options)
    try:
        record = JobRecord(local_config.state_dir, name)
        with open(record.request_path, encoding="utf-8") as fh:
            text = fh.read()
        assert token not in text
        submitted = LocalJobRequest.from_file_json(text)
        assert submitted.initializers[0].secrets == {}
        expected = as_submitted(dry, submitted)
        expected["initializers"][0]["secrets"] = {}
        assert submitted.model_dump(mode="json") == expected

        # Building the step's environment (huggingface_hub) may take a while on a cold cache.
        (proc,) = job_processes(submitted.uid, timeout=300, count=1)
        (supervisor,) = supervisors_of(local_config.state_dir, name)
        assert supervisor in proc.parents()
        supervisor_env = environ_of(supervisor)
        assert supervisor_env[secret_var("model-initializer", "KFT_INIT_HF_TOKEN")] == token
        assert_runs_as_requested(proc, submitted.initializers[0], supervisor_env)
        assert environ_of(proc)["KFT_INIT_HF_TOKEN"] == token
        for root, _dirs, files in os.walk(record.dir):
            for file in files:
                with open(os.path.join(root, file), "rb") as fh:
                    assert token.encode() not in fh.read(), os.path.join(root, file)
    finally:
        client.delete_job(name)


def test_request_file_round_trips_without_the_secrets(client):
    initializer = Initializer(model=HuggingFaceModelInitializer(storage_uri="hf://org/tiny", access_token="hf_x1"))
    dry = client.dry_run(trainer=CustomTrainer(func=jobs.echo_arg, func_args={"text": "x"}), initializer=initializer)
    request = dry.request
    text = request.to_file_json()
    assert "hf_x1" not in text and "secrets" not in text
    loaded = LocalJobRequest.from_file_json(text)
    assert loaded.initializers[0].secrets == {}
    assert loaded == request.model_copy(
        update={"initializers": [i.model_copy(update={"secrets": {}}) for i in request.initializers]}
    )
    assert request.secret_environment() == {secret_var("model-initializer", "KFT_INIT_HF_TOKEN"): "hf_x1"}
    assert loaded.secret_environment() == {}
    (step,) = request.initializers
    assert json.loads(request.files[step.spec_file])["timeout"] == step.timeout_seconds


def test_a_record_this_version_cannot_read_is_named_and_deletable(client, local_config):
    """A job directory written by an older version (string-keyed request.json): list_jobs goes on, get_job
    says what is wrong and how to fix it, delete_job removes it."""
    record = JobRecord(local_config.state_dir, "old-job")
    os.makedirs(record.dir)
    with open(record.request_path, "w", encoding="utf-8") as fh:
        fh.write('{"name": "old-job", "uid": "abc", "nodes": [{"step": "node-0"}]}')
    record.write_state({"created": "2026-01-01T00:00:00+00:00", "status": "Complete", "nodes": {}})
    assert client.list_jobs() == []
    with pytest.raises(BackendError, match=r"older version.*delete_job\('old-job'\)"):
        client.get_job("old-job")
    client.delete_job("old-job")
    assert not os.path.exists(record.dir)


def test_submit_refuses_a_request_rendered_for_another_state_dir(client, local_config, tmp_path):
    other = TrainerClient(local_config.model_copy(update={"state_dir": str(tmp_path / "other")}))
    request = other.dry_run(trainer=CustomTrainer(func=jobs.echo_arg, func_args={"text": "x"})).request
    with pytest.raises(InvalidRequestError, match="not where this backend keeps"):
        client.backend.submit(request)
    assert not os.path.exists(os.path.join(local_config.state_dir, "jobs", request.name))
    assert not os.path.exists(request.layout.job_dir)
