"""What only a real kubelet can show: pods run on the node, two pods rendezvous through the JobSet service
name, logs stream from the kubelet and end with the pod, a failing node fails the wait promptly with the
user's error, deleting a TrainJob removes what it made, and the quick start runs unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from kubeflow_trainer import COMPLETE, FAILED, CustomTrainer, JobFailedError, Name, TrainerClient

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"
JOBSET_LABEL = "jobset.sigs.k8s.io/jobset-name"


def resolve_master() -> None:
    """Print the rendezvous address as the pod resolves it, then all-reduce over gloo across the nodes."""
    import os
    import socket

    import torch
    import torch.distributed as dist

    master = os.environ["PET_MASTER_ADDR"]
    print(f"RESOLVE {master} -> {socket.gethostbyname(master)} self={socket.gethostbyname(socket.gethostname())}")
    dist.init_process_group("gloo")
    value = torch.tensor([float(dist.get_rank() + 1)])
    dist.all_reduce(value)
    print(f"ALLREDUCE rank={dist.get_rank()} sum={value.item()}", flush=True)
    dist.barrier()
    dist.destroy_process_group()


def fail_on_rank_one(token: str) -> None:
    """Node 1 fails with the user's error; node 0 would sleep long."""
    import os
    import time

    if os.environ.get("PET_NODE_RANK") == "1":
        raise ValueError(f"user error {token}")
    time.sleep(300)


def count_lines(n: int, pause: float) -> None:
    """Print n numbered lines, pausing between them."""
    import time

    for i in range(n):
        print(f"LINE {i}", flush=True)
        time.sleep(pause)


@pytest.fixture
def client(k8s_config: Any) -> Any:
    c = TrainerClient(backend_config=k8s_config)
    yield c
    c.close()


@pytest.fixture
def core(plane: dict[str, Any]) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(plane["kubeconfig"]))


@pytest.fixture
def custom(plane: dict[str, Any]) -> Any:
    from kubernetes import client, config

    return client.CustomObjectsApi(config.new_client_from_config(plane["kubeconfig"]))


def start(client: Any, func: Any, **fields: Any) -> str:
    name = f"kft-node-{uuid.uuid4().hex[:6]}"
    return str(client.train(trainer=CustomTrainer(func=func, **fields), options=[Name(name=name)]))


def test_two_pods_rendezvous_through_the_jobset_service_name(
    client: Any, core: Any, namespace: str, plane: dict[str, Any]
) -> None:
    name = start(client, resolve_master, num_nodes=2)
    job = client.wait_for_job_status(name, timeout=180, polling_interval=0.5)
    assert job.status == COMPLETE
    pods = {
        p.metadata.labels["batch.kubernetes.io/job-completion-index"]: p
        for p in core.list_namespaced_pod(namespace, label_selector=f"{JOBSET_LABEL}={name}").items
    }
    assert sorted(pods) == ["0", "1"]
    assert {p.spec.node_name for p in pods.values()} == {plane["node"]["node"]}
    ip0, ip1 = pods["0"].status.pod_ip, pods["1"].status.pod_ip
    assert ip0 != ip1 and ip0.startswith("198.18.0.") and ip1.startswith("198.18.0."), (ip0, ip1)
    for step, own_ip in (("node-0", ip0), ("node-1", ip1)):
        lines = list(client.get_job_logs(name, step=step))
        resolved = [line for line in lines if line.startswith("RESOLVE ")]
        # PET_MASTER_ADDR is <job>-node-0-0.<job>: the headless service's record of pod 0, from CoreDNS.
        assert resolved == [f"RESOLVE {name}-node-0-0.{name} -> {ip0} self={own_ip}"], lines
        assert any(line.startswith("ALLREDUCE") and "sum=3.0" in line for line in lines), lines


def test_follow_streams_from_the_kubelet_and_ends_with_the_pod(client: Any) -> None:
    name = start(client, count_lines, func_args={"n": 4, "pause": 2.0})
    seen: list[tuple[float, str]] = []
    done = threading.Event()

    def follow() -> None:
        for line in client.get_job_logs(name, follow=True):
            seen.append((time.monotonic(), line))
        done.set()

    threading.Thread(target=follow, daemon=True).start()
    job = client.wait_for_job_status(name, timeout=180, polling_interval=0.3)
    completed = time.monotonic()
    assert job.status == COMPLETE
    assert done.wait(30), f"follow=True did not end within 30 s of the job completing; got {seen}"
    texts = [t for _, t in seen]
    assert [t for t in texts if t.startswith("LINE")] == ["LINE 0", "LINE 1", "LINE 2", "LINE 3"], texts
    first = next(t for t, line in seen if line == "LINE 0")
    last = next(t for t, line in seen if line == "LINE 3")
    assert last - first >= 4.0, "the lines arrived together: follow did not stream"
    assert completed - last < 60


def failed_wait(client: Any) -> tuple[str, float, JobFailedError]:
    token = uuid.uuid4().hex[:8]
    name = start(client, fail_on_rank_one, func_args={"token": token}, num_nodes=2)
    started = time.monotonic()
    with pytest.raises(JobFailedError) as info:
        client.wait_for_job_status(name, timeout=240, polling_interval=0.5)
    elapsed = time.monotonic() - started
    client.delete_job(name)
    return token, elapsed, info.value


def test_a_failing_node_fails_the_wait_promptly(client: Any) -> None:
    """node-up.sh sets backoffLimit 0 on the runtime's Job (upstream leaves Kubernetes' 6 retries)."""
    _, elapsed, error = failed_wait(client)
    # Node 0 sleeps 300 s: only the failure of node 1 can end the wait this early.
    assert elapsed < 120, f"the wait took {elapsed:.0f}s"
    assert "failed" in str(error)


def test_the_failure_carries_the_users_error(client: Any) -> None:
    """run_train.py puts the exception into the pod's termination message: the failed step's message."""
    token, _, error = failed_wait(client)
    assert f"step node-1 failed exit code 1: rank 1: ValueError: user error {token}" in str(error), str(error)
    assert error.job is not None
    step = next(s for s in error.job.steps if s.name == "node-1")
    assert step.status == FAILED, error.job.steps
    assert (step.message or "").startswith(f"rank 1: ValueError: user error {token} (File "), step.message
    assert 'in fail_on_rank_one: raise ValueError(f"user error {token}")' in (step.message or ""), step.message


def test_pods_deleted_at_the_backoff_limit_are_explained(
    client: Any, custom: Any, namespace: str, plane: dict[str, Any]
) -> None:
    """Upstream's runtimes set no restartPolicy: JobSet makes it OnFailure and the Job controller deletes the
    failed pod at the backoff limit. The error then says so and how to keep failed pods (restartPolicy: Never)."""
    runtime = custom.get_cluster_custom_object(
        "trainer.kubeflow.org", "v1alpha1", "clustertrainingruntimes", "torch-distributed"
    )
    node_job = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]
    assert node_job["template"]["spec"].pop("restartPolicy") == "Never"  # set by node-up.sh
    name = "torch-on-failure"
    custom.create_namespaced_custom_object(
        "trainer.kubeflow.org",
        "v1alpha1",
        namespace,
        "trainingruntimes",
        {
            "apiVersion": "trainer.kubeflow.org/v1alpha1",
            "kind": "TrainingRuntime",
            "metadata": {"name": name, "labels": runtime["metadata"]["labels"]},
            "spec": runtime["spec"],
        },
    )
    job = client.train(
        runtime=client.get_runtime(name),
        trainer=CustomTrainer(func=fail_on_rank_one, func_args={"token": "gone"}, num_nodes=2),
        options=[Name(name=f"kft-gone-{uuid.uuid4().hex[:6]}")],
    )
    with pytest.raises(JobFailedError) as info:
        client.wait_for_job_status(job, timeout=180, polling_interval=0.5)
    assert "No failed pod is left to show the error" in str(info.value), str(info.value)
    assert "restartPolicy: Never" in str(info.value)
    steps = info.value.job.steps  # no pod left; the nodes still read as the Failed job's steps
    assert [(s.name, s.status, s.pod_name) for s in steps] == [("node-0", FAILED, ""), ("node-1", FAILED, "")], steps
    assert all("pod is gone" in (s.message or "") for s in steps), steps
    client.delete_job(job)


def test_delete_removes_pods_services_and_secrets(client: Any, core: Any, namespace: str) -> None:
    name = start(client, count_lines, func_args={"n": 1, "pause": 300.0}, num_nodes=2)
    selector = f"{JOBSET_LABEL}={name}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        if len(pods) == 2 and all(p.status.phase == "Running" for p in pods):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the job's pods did not run: {[(p.metadata.name, p.status.phase) for p in pods]}")
    assert any(s.metadata.name == name for s in core.list_namespaced_service(namespace).items)
    client.delete_job(name)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        services = [s.metadata.name for s in core.list_namespaced_service(namespace).items if name in s.metadata.name]
        secrets = [s.metadata.name for s in core.list_namespaced_secret(namespace).items if name in s.metadata.name]
        if not pods and not services and not secrets:
            return
        time.sleep(0.5)
    pytest.fail(
        f"left after delete_job: pods {[p.metadata.name for p in pods]}, services {services}, secrets {secrets}"
    )


def test_quickstart_runs_unchanged(plane: dict[str, Any]) -> None:
    env = {
        **os.environ,
        "KUBEFLOW_TRAINER_BACKEND": "kubernetes",
        "KUBECONFIG": plane["kubeconfig"],
    }
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for rank in (0, 1):
        assert f"rank {rank}/2 epoch 2 mean loss" in out.stdout, out.stdout[-3000:]
    assert ": Complete" in out.stdout, out.stdout[-3000:]
