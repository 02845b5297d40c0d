"""Credentials given to initializers never appear in anything the SDK shows or writes: dry runs, reprs, job
objects, events, every step's log, job records on disk (local), container labels, node containers'
environments and the job's volume (Docker, Podman).

One job downloads from a real S3-compatible server (moto, with authentication) with the right key; a second
one is refused by the server (a wrong secret that is itself a credential): a failing step's messages must not
echo it either. The only place a credential may be is the environment of the one initializer container that
needs it (its ``KFT_INIT_*`` variables, as ``docker inspect`` shows them to whoever controls the engine), never
a label or a node.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import faultjobs as jobs
import pytest
from conftest import JOB_LABEL, TEST_IMAGE, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.servers import S3Server, host_address

from kubeflow_trainer import (
    BuiltinTrainer,
    CustomTrainer,
    HuggingFaceModelInitializer,
    Initializer,
    JobFailedError,
    Name,
    S3DatasetInitializer,
    TorchTuneConfig,
    TrainerClient,
)

WRONG = f"wrongSECRET{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        server.put_tree("datasets", "secret/v1", {"train.jsonl": b'{"x": 1}\n'})
        yield server


@pytest.fixture(autouse=True)
def direct(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = f"127.0.0.1,localhost,{host_address()}"
    monkeypatch.setenv("NO_PROXY", hosts)
    monkeypatch.setenv("no_proxy", hosts)


def initializer(s3: S3Server, host: str, secret: str) -> Initializer:
    return Initializer(
        dataset=S3DatasetInitializer(
            storage_uri="s3://datasets/secret/v1/",
            endpoint=s3.endpoint(host),
            access_key_id=s3.access_key,
            secret_access_key=secret,
            region="us-east-1",
        )
    )


def shown(client: TrainerClient, name: str) -> str:
    """Everything the SDK shows of a job: the job and its steps, events, every step's log."""
    job = client.get_job(name)
    text = [repr(job), str(job), repr(client.list_jobs()), repr(client.get_job_events(name))]
    for step in job.steps:
        text += list(client.get_job_logs(name, step=step.name))
    return "\n".join(text)


def written_locally(client: TrainerClient, names: list[str]) -> str:
    root = Path(client.backend.config.state_dir) / "jobs"  # type: ignore[attr-defined]
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for n in names for p in (root / n).rglob("*") if p.is_file()
    )


def written_to_engine(engine: str, names: list[str]) -> tuple[str, dict[str, list[str]]]:
    """(labels of the jobs' containers/networks/volumes, node containers' env and the volume's files as text;
    each initializer container's environment by container)."""
    text = []
    init_env: dict[str, list[str]] = {}
    for name in names:
        containers = cli(engine, "ps", "-a", "--filter", f"label={JOB_LABEL}={name}", "--format", "{{.Names}}")
        for container in containers.split():
            (info,) = json.loads(cli(engine, "inspect", container))
            labels = info["Config"]["Labels"] or {}
            text.append(json.dumps(labels))
            env = info["Config"]["Env"] or []
            if labels.get("trainer.kubeflow.org/step", "").startswith("node-"):
                text += env
            else:
                init_env[container] = env
            text.append(cli(engine, "logs", container, check=False))
        for inspect in ("network", "volume"):
            listing = cli(engine, inspect, "ls", "--filter", f"label={JOB_LABEL}={name}", "--format", "{{.Name}}")
            for obj in listing.split():
                text.append(cli(engine, inspect, "inspect", obj))
                if inspect == "volume":  # every file the SDK put into the job's volume, and what the job wrote
                    text.append(
                        cli(engine, "run", "--rm", "--network", "none", "-v", f"{obj}:/v:ro", TEST_IMAGE,
                            "sh", "-c", "find /v -type f -exec cat {} +", check=False)
                    )  # fmt: skip
    return "\n".join(text), init_env


@pytest.mark.parametrize("backend", ["local", "docker", "podman"])
def test_credentials_never_written_or_shown(backend, fault, s3):
    scope, client, row = fault("credentials never shown or written", backend)
    host = "127.0.0.1" if backend == "local" else host_address()
    secrets = [s3.secret_key, s3.access_key, WRONG]
    trainer = CustomTrainer(func=jobs.quick, func_args={"tag": "secret"})
    good, bad = scope.job_name("good"), scope.job_name("bad")
    dry = client.dry_run(initializer=initializer(s3, host, s3.secret_key), trainer=trainer, options=[Name(good)])
    before_run = [repr(dry), str(dry), dry.request.model_dump_json(), repr(initializer(s3, host, WRONG))]
    client.train(initializer=initializer(s3, host, s3.secret_key), trainer=trainer, options=[Name(good)])
    client.train(initializer=initializer(s3, host, WRONG), trainer=trainer, options=[Name(bad)])
    assert client.wait_for_job_status(good, timeout=300, polling_interval=0.5).status == "Complete"
    with pytest.raises(JobFailedError) as refused:
        client.wait_for_job_status(bad, timeout=300, polling_interval=0.5)
    everything = [*before_run, str(refused.value), shown(client, good), shown(client, bad)]
    if backend == "local":
        everything.append(written_locally(client, [good, bad]))
        init_env: dict[str, list[str]] = {}
    else:
        engine_text, init_env = written_to_engine(backend, [good, bad])
        everything.append(engine_text)
        assert init_env, "the initializer containers were not found"
    text = "\n".join(everything)
    leaked = [s[:6] + "..." for s in secrets if s in text]
    assert not leaked, f"credentials found in what the SDK showed or wrote: {leaked}"
    # Where the credential must be: only in the environment of the initializer that uses it.
    for container, env in init_env.items():
        holders = [e.split("=", 1)[0] for e in env if any(s in e for s in secrets)]
        assert holders and all(h.startswith("KFT_INIT_") for h in holders), (container, holders)
    row.outcome = f"0 of {len(secrets)} credentials in dry run, reprs, job, events, logs, " + (
        "job records on disk" if backend == "local" else "labels, node env, volume files"
    )
    row.bystander = "n/a"


def test_credentials_never_shown_on_kubernetes(fault, k8s_plane, k8s_settings):
    """Kubernetes: the credentials travel in one Secret per initializer (referenced by ``secretRef``, owned by
    the TrainJob), never in the TrainJob, its events, the dry run or any repr; delete_job removes the Secret.
    The test control plane runs no containers (KWOK), so what is checked is everything the SDK sends and shows;
    Secrets are counted with the cluster's own API before, while the jobs exist, and after delete_job."""
    from kubernetes import client as k8s
    from kubernetes import config

    scope, client, row = fault("credentials never shown or written", "kubernetes", **k8s_settings)
    key_id, secret, token = (
        f"AKIA{uuid.uuid4().hex[:16].upper()}",
        f"k8sSECRET{uuid.uuid4().hex}",
        f"hf_{uuid.uuid4().hex}",
    )
    init = Initializer(
        dataset=S3DatasetInitializer(
            storage_uri="s3://datasets/secret/v1/",
            endpoint="http://s3.invalid:9000",
            access_key_id=key_id,
            secret_access_key=secret,
            region="us-east-1",
        ),
        model=HuggingFaceModelInitializer(storage_uri="hf://org/model", access_token=token),
    )
    job_args = {"runtime": "torchtune-llama3.2-1b", "trainer": BuiltinTrainer(config=TorchTuneConfig(epochs=1))}
    name = scope.job_name("cred")
    dry = client.dry_run(initializer=init, **job_args, options=[Name(name)])
    everything = [repr(dry), str(dry), dry.request.model_dump_json(), repr(dry.request), repr(init), str(init)]
    client.train(initializer=init, **job_args, options=[Name(name)])
    during = scope.counts()["secrets"]
    api = config.new_client_from_config(scope.config.config_file)
    try:
        raw = k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            "trainer.kubeflow.org", "v1alpha1", scope.config.namespace, "trainjobs", name
        )
        stored = (
            k8s.CoreV1Api(api)
            .list_namespaced_secret(scope.config.namespace, label_selector=f"{JOB_LABEL}={name}")
            .items
        )
        time.sleep(3)  # the controllers react (JobSet, pods, events)
        cluster_events = k8s.CoreV1Api(api).list_namespaced_event(scope.config.namespace).items
    finally:
        api.close()
    job = client.get_job(name)
    everything += [json.dumps(raw), repr(job), str(job), repr(client.list_jobs()), repr(client.get_job_events(name))]
    everything += [f"{e.reason} {e.message}" for e in cluster_events]
    text = "\n".join(everything)
    leaked = [s[:6] + "..." for s in (key_id, secret, token) if s in text]
    assert not leaked, f"credentials found in what the SDK showed or sent outside the Secrets: {leaked}"
    refs = {t: raw["spec"]["initializer"][t]["secretRef"]["name"] for t in ("dataset", "model")}
    assert sorted(refs.values()) == sorted(s.metadata.name for s in stored), (refs, stored)
    for item in stored:
        assert [o.name for o in item.metadata.owner_references or []] == [name], "a Secret not owned by the TrainJob"
    assert during == 2, f"{during} Secrets of the job while it exists (one per initializer with credentials)"
    row.outcome = (
        "0 of 3 credentials in dry run, reprs, TrainJob, job, events; 2 Secrets (owned by the TrainJob) while the "
        "job exists, removed by delete_job"
    )
    row.bystander = "n/a"
