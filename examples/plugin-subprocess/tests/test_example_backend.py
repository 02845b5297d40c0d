"""The example third-party backend passes the same conformance kit as the built-in backends, and its own
checks: the dry-run request is typed and is what runs; a failed node stops the others by itself."""

from __future__ import annotations

import os
import time

import pytest

from kubeflow_trainer import CustomTrainer, JobFailedError, Name, TrainerClient
from kubeflow_trainer.testing import BackendConformance
from kubeflow_trainer_example import SubprocessBackendConfig
from kubeflow_trainer_example.request import SubprocessRequest


class TestSubprocessExampleConformance(BackendConformance):
    backend = "subprocess-example"
    torch_available = False
    job_timeout = 60

    @pytest.fixture
    def backend_config(self, tmp_path):
        return SubprocessBackendConfig(state_dir=str(tmp_path / "state"))


def rank1_fails_rank0_sleeps() -> None:
    import os
    import time

    if os.environ["RANK"] == "1":
        raise SystemExit(7)
    time.sleep(60)


def sleeps(seconds: float) -> None:
    import time

    time.sleep(seconds)


def _node_processes(job: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """step -> (argv, environment) of every live process of the job, read from /proc."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = dict(x.split(b"=", 1) for x in fh.read().split(b"\0") if b"=" in x)
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = [a.decode() for a in fh.read().split(b"\0") if a]
        except OSError:
            continue
        decoded = {k.decode(): v.decode() for k, v in env.items()}
        if decoded.get("KUBEFLOW_TRAINER_JOB_NAME") == job and "RANK" in decoded:
            found[f"node-{decoded['RANK']}"] = (argv, decoded)
    return found


@pytest.fixture
def client(tmp_path):
    c = TrainerClient(SubprocessBackendConfig(state_dir=str(tmp_path / "state")))
    yield c
    for job in c.list_jobs():
        c.delete_job(job.name)


def test_dry_run_request_is_typed_and_is_what_runs(client):
    trainer = CustomTrainer(func=sleeps, func_args={"seconds": 30}, num_nodes=2)
    dry = client.dry_run(trainer=trainer, options=[Name("typed")])
    assert isinstance(dry.request, SubprocessRequest)
    assert [n.step for n in dry.request.nodes] == ["node-0", "node-1"]
    client.train(trainer=trainer, options=[Name("typed")])
    with open(os.path.join(dry.request.job_dir, "request.json")) as fh:
        ran = SubprocessRequest.model_validate_json(fh.read())
    deadline = time.monotonic() + 30
    while len(procs := _node_processes("typed")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(procs) == ["node-0", "node-1"]
    for node in ran.nodes:
        argv, env = procs[node.step]
        assert argv == node.argv
        assert {k: env.get(k) for k in node.env} == node.env
    # The dry run and the submitted job differ only in the free port each render picked.
    port_free = {"MASTER_PORT", "PET_MASTER_PORT"}
    strip = lambda r: [(n.argv, {k: v for k, v in n.env.items() if k not in port_free}) for n in r.nodes]  # noqa: E731
    assert strip(ran) == strip(dry.request) and ran.files == dry.request.files


def test_a_failed_node_stops_the_others_with_no_client_running(client):
    name = client.train(trainer=CustomTrainer(func=rank1_fails_rank0_sleeps, num_nodes=2))
    with pytest.raises(JobFailedError):
        client.wait_for_job_status(name, timeout=60, polling_interval=0.2)
    deadline = time.monotonic() + 20
    while (_node_processes(name) or client.get_job(name).steps[0].status == "Running") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _node_processes(name) == {}
    node0, node1 = client.get_job(name).steps
    assert node1.exit_code == 7
    assert node0.status == "Failed" and node0.message == "stopped: node-1 failed with exit code 7"
