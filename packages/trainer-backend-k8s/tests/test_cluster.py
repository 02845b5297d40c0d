"""The Kubernetes backend against a real kube-apiserver with the real Trainer CRDs, webhooks and controllers,
JobSet, kube-controller-manager, kube-scheduler and KWOK (pods run through their phases; they run no code)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import require

from kubeflow_trainer import (
    AlreadyExistsError,
    Annotations,
    BackendUnavailableError,
    BuiltinTrainer,
    CustomTrainer,
    CustomTrainerContainer,
    HuggingFaceModelInitializer,
    Initializer,
    InvalidRequestError,
    JobNotFoundError,
    Labels,
    LoraConfig,
    Name,
    Runtime,
    RuntimeKind,
    RuntimePatch,
    RuntimeTrainer,
    S3DatasetInitializer,
    TorchTuneConfig,
    TrainerClient,
    TrainerType,
    UrlDatasetInitializer,
)
from kubeflow_trainer_k8s import KubernetesBackendConfig


def train_fn(epochs: int = 1) -> None:
    print("epochs", epochs)


@pytest.fixture
def client(k8s_config):
    with TrainerClient(k8s_config) as c:
        yield c


def test_runtimes_come_from_the_cluster(client, plane):
    require(plane, "runtimes")
    names = {r.name for r in client.list_runtimes()}
    assert {"torch-distributed", "deepspeed-distributed", "torchtune-llama3.2-1b"} <= names
    tune = client.get_runtime("torchtune-llama3.2-1b")
    assert (
        tune.trainer.trainer_type == TrainerType.BUILTIN_TRAINER and tune.kind == RuntimeKind.CLUSTER_TRAINING_RUNTIME
    )


def test_every_trainer_type_is_accepted_by_the_real_validation(client, plane):
    require(plane, "trainer", "webhooks", "runtimes")
    requests = [
        {
            "trainer": CustomTrainer(
                func=train_fn,
                func_args={"epochs": 2},
                num_nodes=2,
                resources_per_node={"cpu": 2, "memory": "1Gi", "gpu": 1},
                packages_to_install=["six"],
                env={"X": "$(Y)"},
            )
        },
        {
            "trainer": CustomTrainerContainer(
                image="example.invalid/trainer:1", command=["python3", "-m", "t"], args=["--lr", "0.1"], num_nodes=1
            )
        },
        {
            "runtime": "torchtune-llama3.2-1b",
            "trainer": BuiltinTrainer(
                config=TorchTuneConfig(epochs=1, batch_size=2, peft_config=LoraConfig(lora_rank=4))
            ),
        },
        # initializers need a runtime with initializer jobs (the webhook checks): the torchtune ones have them
        {
            "runtime": "torchtune-llama3.2-1b",
            "trainer": BuiltinTrainer(config=TorchTuneConfig(epochs=1)),
            "initializer": Initializer(
                dataset=S3DatasetInitializer(storage_uri="s3://bucket/ds", endpoint="http://s3"),
                model=HuggingFaceModelInitializer(storage_uri="hf://org/model"),
            ),
        },
        {
            "trainer": CustomTrainer(func=train_fn),
            "options": [
                Labels(labels={"team": "ml"}),
                Annotations(annotations={"note": "x"}),
                RuntimePatch(patch={"template": {"metadata": {"labels": {"p": "q"}}}}, manager="example.com/tests"),
            ],
        },
    ]
    for i, kwargs in enumerate(requests):
        options = [Name(f"accepted-{i}"), *kwargs.pop("options", [])]
        name = client.train(options=options, **kwargs)
        assert client.get_job(name).name == name
        client.delete_job(name)


def test_initializer_credentials_travel_in_a_secret_owned_by_the_job(client, plane):
    """spec.initializer as the Trainer runtimes expect it (storageUri, env, secretRef): the real webhook and
    controller accept it and wire the Secret into the initializer jobs; delete_job leaves no Secret."""
    require(plane, "trainer", "webhooks", "runtimes", "jobset")
    core = client.backend.core
    ns = client.backend.namespace
    name = client.train(
        runtime="torchtune-llama3.2-1b",
        trainer=BuiltinTrainer(config=TorchTuneConfig(epochs=1)),
        initializer=Initializer(
            dataset=S3DatasetInitializer(
                storage_uri="s3://bucket/ds", endpoint="http://s3", access_key_id="AKIA1", secret_access_key="s3cr3t"
            ),
            model=HuggingFaceModelInitializer(storage_uri="hf://org/model", access_token="hf_tok"),
        ),
        options=[Name("init-secrets")],
    )
    obj = client.backend.custom.get_namespaced_custom_object("trainer.kubeflow.org", "v1alpha1", ns, "trainjobs", name)
    assert "s3cr3t" not in json.dumps(obj) and "hf_tok" not in json.dumps(obj)
    assert obj["spec"]["initializer"]["dataset"]["secretRef"] == {"name": f"{name}-dataset-initializer"}
    secret = core.read_namespaced_secret(f"{name}-dataset-initializer", ns)
    assert sorted(secret.data) == ["ACCESS_KEY_ID", "SECRET_ACCESS_KEY"]
    assert [(o.kind, o.uid) for o in secret.metadata.owner_references] == [("TrainJob", obj["metadata"]["uid"])]
    assert sorted(core.read_namespaced_secret(f"{name}-model-initializer", ns).data) == ["ACCESS_TOKEN"]
    # The Trainer controller hands the Secret to the initializer containers of the JobSet it creates.
    deadline = time.monotonic() + 60
    jobset = None
    while jobset is None and time.monotonic() < deadline:
        try:
            jobset = client.backend.custom.get_namespaced_custom_object(
                "jobset.x-k8s.io", "v1alpha2", ns, "jobsets", name
            )
        except Exception:
            time.sleep(0.5)
    assert jobset is not None, "the Trainer controller created no JobSet"
    assert f"{name}-dataset-initializer" in json.dumps(jobset["spec"]), "the Secret is not wired into the JobSet"
    # The same name again, with other credentials: refused, and the first job's Secret is untouched.
    with pytest.raises(AlreadyExistsError):
        client.train(
            runtime="torchtune-llama3.2-1b",
            trainer=BuiltinTrainer(config=TorchTuneConfig(epochs=1)),
            initializer=Initializer(
                dataset=S3DatasetInitializer(storage_uri="s3://b/d", access_key_id="OTHER", secret_access_key="x")
            ),
            options=[Name("init-secrets")],
        )
    again = core.read_namespaced_secret(f"{name}-dataset-initializer", ns)
    assert again.data == secret.data and again.metadata.uid == secret.metadata.uid
    client.delete_job(name)
    for target in ("dataset", "model"):
        with pytest.raises(Exception, match=r"404|Not Found"):
            core.read_namespaced_secret(f"{name}-{target}-initializer", ns)


def test_initializers_the_trainer_cannot_run_are_refused_before_anything_is_created(client, plane):
    require(plane, "trainer")
    with pytest.raises(InvalidRequestError, match="UrlDatasetInitializer is not supported on kubernetes"):
        client.train(
            trainer=CustomTrainer(func=train_fn),
            initializer=Initializer(dataset=UrlDatasetInitializer(storage_uri="https://x.invalid/d.tar")),
        )
    assert client.list_jobs() == []


def test_invalid_trainjob_is_refused_with_the_server_message(client, plane):
    require(plane, "trainer", "webhooks")
    ghost = Runtime(
        name="no-such-runtime",
        kind=RuntimeKind.CLUSTER_TRAINING_RUNTIME,
        trainer=RuntimeTrainer(trainer_type=TrainerType.CUSTOM_TRAINER, framework="torch"),
    )
    with pytest.raises(InvalidRequestError, match="no-such-runtime") as info:
        client.train(runtime=ghost, trainer=CustomTrainer(func=train_fn))
    assert "refused" in str(info.value)
    assert client.list_jobs() == []


def test_two_node_job_runs_through_the_real_controllers(client, plane):
    require(plane, "trainer", "jobset", "kube-controller-manager", "kube-scheduler", "kwok", "nodes")
    name = client.train(trainer=CustomTrainer(func=train_fn, num_nodes=2), options=[Name("two-nodes")])
    assert client.get_job(name).status == "Created"
    running = client.wait_for_job_status(name, {"Running", "Complete"}, timeout=120, polling_interval=0.5)
    lines = list(client.get_job_logs(name, step="node-1", follow=True))  # ends when the pod ends
    assert lines and "kwok" in lines[0]
    job = client.wait_for_job_status(name, timeout=120, polling_interval=0.5)
    assert running.status in ("Running", "Complete")
    assert [s.name for s in job.steps] == ["node-0", "node-1"]
    assert all(s.status == "Complete" for s in job.steps)
    reasons = {(e.involved_object_kind, e.reason) for e in client.get_job_events(name)}
    assert ("Pod", "Scheduled") in reasons and ("Job", "Completed") in reasons
    client.delete_job(name)
    deadline = time.monotonic() + 30
    from kubernetes import client as k8s
    from kubernetes import config

    core = k8s.CoreV1Api(config.new_client_from_config(plane["kubeconfig"]))
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(
            client.backend.namespace, label_selector=f"jobset.sigs.k8s.io/jobset-name={name}"
        )
        if not pods.items:
            break
        time.sleep(0.5)
    assert not pods.items, "delete_job did not cascade to the pods"
    with pytest.raises(JobNotFoundError):
        client.get_job(name)


def test_follow_waits_for_pending_pods(client, plane):
    require(plane, "trainer", "jobset", "kube-controller-manager", "kube-scheduler", "kwok", "nodes")
    name = client.train(trainer=CustomTrainer(func=train_fn))
    lines = list(client.get_job_logs(name, follow=True))  # called at once: the pod does not exist yet
    assert lines and "kwok" in lines[0]
    client.delete_job(name)


def test_list_jobs_costs_a_constant_number_of_calls(client, plane):
    require(plane, "trainer", "webhooks")
    costs = {}
    for count in (1, 5):
        while len(client.list_jobs()) < count:
            client.train(trainer=CustomTrainer(func=train_fn))
        before = client.backend.api_calls
        assert len(client.list_jobs()) == count
        costs[count] = client.backend.api_calls - before
    assert costs[1] == costs[5] == 4  # trainjobs, pods, and both runtime lists (each job's real runtime)
    assert {j.runtime.trainer.framework for j in client.list_jobs()} == {"torch"}


def test_unreachable_api_server_is_backend_unavailable(plane, tmp_path):
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(Path(plane["kubeconfig"]).read_text().replace(plane["server"], "https://127.0.0.1:1"))
    c = TrainerClient(KubernetesBackendConfig(config_file=str(cfg), request_timeout=5))
    with pytest.raises(BackendUnavailableError, match="cannot reach the Kubernetes API server"):
        c.list_jobs()


def test_the_local_quickstart_runs_unchanged_on_kubernetes(plane, namespace):
    """examples/quickstart.py, written for the local backend, with only KUBEFLOW_TRAINER_BACKEND changed.
    (Its TrainJob goes through the real controllers; under KWOK the pods print KWOK's log, not the loss.)"""
    import os
    import subprocess
    import sys

    require(plane, "trainer", "jobset", "kube-controller-manager", "kube-scheduler", "kwok", "nodes")
    script = Path(__file__).resolve().parents[3] / "examples" / "quickstart.py"
    env = {**os.environ, "KUBEFLOW_TRAINER_BACKEND": "kubernetes", "KUBECONFIG": plane["kubeconfig"]}
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "on kubernetes" in out.stdout
    assert "Complete; steps: [('node-0', 'Complete'), ('node-1', 'Complete')]" in out.stdout


def test_forbidden_says_which_verb_and_resource(plane, namespace, tmp_path):
    """A real RBAC refusal: a user the API server authenticates (client cert from the plane's CA) but who
    holds no role."""
    import base64
    import subprocess

    from kubeflow_trainer import BackendError

    pki = Path(plane["run_dir"]) / "pki"
    key, csr, crt = tmp_path / "u.key", tmp_path / "u.csr", tmp_path / "u.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(csr),
            "-subj",
            "/CN=kft-nobody",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(pki / "ca.crt"),
            "-CAkey",
            str(pki / "ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            str(crt),
        ],
        check=True,
        capture_output=True,
    )
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    cfg = tmp_path / "nobody.kubeconfig"
    cfg.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [
                    {
                        "name": "k",
                        "cluster": {"server": plane["server"], "certificate-authority-data": b64(pki / "ca.crt")},
                    }
                ],
                "users": [{"name": "u", "user": {"client-certificate-data": b64(crt), "client-key-data": b64(key)}}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": namespace}}],
            }
        )
    )
    c = TrainerClient(KubernetesBackendConfig(config_file=str(cfg)))
    with pytest.raises(BackendError, match="forbidden") as info:
        c.list_jobs()
    text = str(info.value)
    assert "kft-nobody" in text and 'cannot list resource "trainjobs"' in text and namespace in text


def test_a_suspended_trainjob_is_suspended_and_waiting_for_running_works_across_resume(client, plane):
    """kubeflow/sdk#803: a TrainJob created suspended (as Kueue does) reads Suspended, not Created; after the
    resume (spec.suspend false, as Kueue's admission does) it reads Running, and wait_for_job_status({"Running"})
    started while it was suspended returns."""
    require(plane, "trainer", "jobset", "kube-controller-manager", "kube-scheduler", "kwok", "nodes")
    import threading

    from kubernetes import client as k8s
    from kubernetes import config

    def suspend(job_spec, trainer, backend):
        job_spec["spec"]["suspend"] = True

    name = client.train(trainer=CustomTrainer(func=train_fn, num_nodes=2), options=[Name("suspended"), suspend])
    try:
        deadline = time.monotonic() + 60
        while (job := client.get_job(name)).status != "Suspended" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert job.status == "Suspended", (job.status, job.message)
        time.sleep(3)  # the controllers had their chance to start it: still suspended, nothing runs
        assert client.get_job(name).status == "Suspended"
        got: dict[str, object] = {}
        waiter = threading.Thread(
            target=lambda: got.update(
                job=client.wait_for_job_status(name, {"Running"}, timeout=120, polling_interval=0.5)
            )
        )
        waiter.start()
        time.sleep(1)
        api = k8s.CustomObjectsApi(config.new_client_from_config(plane["kubeconfig"]))
        api.patch_namespaced_custom_object(
            "trainer.kubeflow.org",
            "v1alpha1",
            client.backend.namespace,
            "trainjobs",
            name,
            {"spec": {"suspend": False}},
        )
        waiter.join(150)
        assert not waiter.is_alive() and got["job"].status == "Running", got
        conditions = api.get_namespaced_custom_object(
            "trainer.kubeflow.org", "v1alpha1", client.backend.namespace, "trainjobs", name
        )["status"].get("conditions", [])
        print("conditions after the resume:", [(c["type"], c["status"], c.get("reason")) for c in conditions])
    finally:
        client.delete_job(name)


def test_max_restarts_is_rendered_for_torchrun_and_accepted_by_the_api_server(client, plane):
    """MaxRestarts(n) reaches the pods' torchrun as PET_MAX_RESTARTS (the TrainJob API has no JobSet
    failurePolicy field); the real validation accepts it; MaxRestarts on a container trainer is refused."""
    require(plane, "trainer", "webhooks", "runtimes")
    from kubeflow_trainer import MaxRestarts

    name = client.train(trainer=CustomTrainer(func=train_fn, num_nodes=2), options=[Name("restarts"), MaxRestarts(2)])
    try:
        from kubernetes import client as k8s
        from kubernetes import config

        api = k8s.CustomObjectsApi(config.new_client_from_config(plane["kubeconfig"]))
        body = api.get_namespaced_custom_object(
            "trainer.kubeflow.org", "v1alpha1", client.backend.namespace, "trainjobs", name
        )
        env = {e["name"]: e.get("value") for e in body["spec"]["trainer"]["env"]}
        assert env["PET_MAX_RESTARTS"] == "2"
    finally:
        client.delete_job(name)
    with pytest.raises(InvalidRequestError, match="MaxRestarts applies to a CustomTrainer"):
        client.train(trainer=CustomTrainerContainer(image="example.invalid/t:1"), options=[MaxRestarts(1)])
