"""Upstream compatibility on the real control plane (scripts/k8s/): typed runtime patches and callable options
reach the JobSet, the Trainer controller's torchtune handling rewrites a BuiltinTrainer job's recipe command,
and jobs report the runtime they really use."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import require

from kubeflow_trainer import (
    BuiltinTrainer,
    CustomTrainer,
    DataFormat,
    HuggingFaceDatasetInitializer,
    Initializer,
    InvalidRequestError,
    LoraConfig,
    Name,
    TorchTuneConfig,
    TorchTuneInstructDataset,
    TrainerClient,
    TrainerType,
)
from kubeflow_trainer.options import (
    ContainerPatch,
    JobSetSpecPatch,
    JobSetTemplatePatch,
    JobSpecPatch,
    JobTemplatePatch,
    PodSpecPatch,
    PodTemplatePatch,
    ReplicatedJobPatch,
    RuntimePatch,
    TrainingRuntimeSpecPatch,
)

TUNE = "torchtune-llama3.2-1b"


def train_fn() -> None:
    print("hello")


@pytest.fixture
def client(k8s_config):
    with TrainerClient(k8s_config) as c:
        yield c


def jobset(client: TrainerClient, name: str, timeout: float = 60) -> dict[str, Any]:
    """The JobSet the Trainer controller made for TrainJob ``name``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            obj: dict[str, Any] = client.backend.custom.get_namespaced_custom_object(
                "jobset.x-k8s.io", "v1alpha2", client.backend.namespace, "jobsets", name
            )
            return obj
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def container(js: dict[str, Any], rjob: str, name: str) -> dict[str, Any]:
    (job,) = [r for r in js["spec"]["replicatedJobs"] if r["name"] == rjob]
    (found,) = [c for c in job["template"]["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return dict(found)


def test_torchtune_job_is_rewritten_by_the_real_trainer_controller(client, plane):
    """`tune run` + upstream's args: the controller's torchtune plugin merges them into the runtime's recipe
    command of the JobSet (it leaves jobs without that command alone)."""
    require(plane, "trainer", "webhooks", "runtimes", "jobset")
    name = client.train(
        runtime=TUNE,
        initializer=Initializer(dataset=HuggingFaceDatasetInitializer(storage_uri="hf://tatsu-lab/alpaca/data")),
        trainer=BuiltinTrainer(
            config=TorchTuneConfig(
                epochs=3,
                batch_size=4,
                peft_config=LoraConfig(lora_rank=4),
                dataset_preprocess_config=TorchTuneInstructDataset(source=DataFormat.PARQUET),
            )
        ),
        options=[Name("tune-rewrite")],
    )
    tj = client.backend.custom.get_namespaced_custom_object(
        "trainer.kubeflow.org", "v1alpha1", client.backend.namespace, "trainjobs", name
    )
    assert tj["spec"]["trainer"]["command"] == ["tune", "run"]
    node = container(jobset(client, name), "node", "node")
    command = [*node.get("command", []), *node.get("args", [])]
    print("JobSet node command:", command)
    assert command[:2] == ["tune", "run"]
    for arg in ("epochs=3", "batch_size=4", "model.lora_rank=4", "dataset.data_dir=/workspace/dataset/data"):
        assert arg in command, f"{arg} not merged into the recipe command {command}"
    assert any("lora" in part for part in command if "finetune" in part), f"no LoRA recipe chosen: {command}"
    job = client.get_job(name)
    assert job.runtime.name == TUNE and job.runtime.trainer.framework == "torchtune"
    assert job.runtime.trainer.trainer_type == TrainerType.BUILTIN_TRAINER
    assert "torchtune-trainer" in job.runtime.trainer.image
    client.delete_job(name)


def test_typed_runtime_patch_and_a_callable_option_reach_the_jobset(client, plane):
    require(plane, "trainer", "webhooks", "runtimes", "jobset")
    seen: list[Any] = []

    def annotate(job_spec: dict[str, Any], trainer: Any, backend: Any) -> None:
        seen.append((trainer, backend))
        job_spec.setdefault("metadata", {}).setdefault("annotations", {})["example.com/by"] = "callable"

    patch = RuntimePatch(
        training_runtime_spec=TrainingRuntimeSpecPatch(
            template=JobSetTemplatePatch(
                metadata={"labels": {"example.com/jobset": "patched"}},
                spec=JobSetSpecPatch(
                    replicated_jobs=[
                        ReplicatedJobPatch(
                            name="node",
                            template=JobTemplatePatch(
                                spec=JobSpecPatch(
                                    template=PodTemplatePatch(
                                        metadata={"labels": {"example.com/pod": "patched"}},
                                        spec=PodSpecPatch(
                                            node_selector={"kubernetes.io/os": "linux"},
                                            containers=[
                                                ContainerPatch(
                                                    name="node", security_context={"allowPrivilegeEscalation": False}
                                                )
                                            ],
                                        ),
                                    )
                                )
                            ),
                        )
                    ]
                ),
            )
        )
    )
    trainer = CustomTrainer(func=train_fn)
    name = client.train(trainer=trainer, options=[Name("typed-patch"), patch, annotate])
    assert seen == [(trainer, client.backend)]
    tj = client.backend.custom.get_namespaced_custom_object(
        "trainer.kubeflow.org", "v1alpha1", client.backend.namespace, "trainjobs", name
    )
    assert tj["metadata"]["annotations"]["example.com/by"] == "callable"
    # the server stamps each patch with the time it was set
    assert [{k: v for k, v in p.items() if k != "time"} for p in tj["spec"]["runtimePatches"]] == [patch.to_dict()]
    js = jobset(client, name)
    assert js["metadata"]["labels"]["example.com/jobset"] == "patched"
    (node_job,) = [r for r in js["spec"]["replicatedJobs"] if r["name"] == "node"]
    assert node_job["template"]["spec"]["template"]["metadata"]["labels"]["example.com/pod"] == "patched"
    assert node_job["template"]["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert container(js, "node", "node")["securityContext"] == {"allowPrivilegeEscalation": False}
    job = client.get_job(name)
    assert job.runtime.name == "torch-distributed" and job.runtime.trainer.framework == "torch"
    assert job.runtime.trainer.image  # the runtime's real image, not a placeholder
    assert [j.runtime for j in client.list_jobs() if j.name == name] == [job.runtime]
    client.delete_job(name)


def test_bad_callable_options_are_refused_before_anything_is_created(client, plane):
    require(plane, "kube-apiserver")

    def typo(job_spec: dict[str, Any], trainer: Any, backend: Any) -> None:
        job_spec["spec"]["activeDeadlineSecs"] = 5

    def boom(job_spec: dict[str, Any], trainer: Any, backend: Any) -> None:
        raise ValueError("not today")

    def rename(job_spec: dict[str, Any], trainer: Any, backend: Any) -> None:
        job_spec["metadata"]["name"] = "other"

    cases = [
        (typo, r"does not have: spec\.activeDeadlineSecs"),
        (boom, "failed on the TrainJob body: ValueError: not today"),
        (rename, "set the name with the Name option"),
    ]
    for option, match in cases:
        with pytest.raises(InvalidRequestError, match=match):
            client.train(trainer=CustomTrainer(func=train_fn), options=[option])
    with pytest.raises(InvalidRequestError, match=r"no field trainingRuntimeSpec\.template\.spec\.replicatedjobs"):
        client.train(
            trainer=CustomTrainer(func=train_fn),
            options=[RuntimePatch(patch={"template": {"spec": {"replicatedjobs": []}}})],
        )
    assert client.list_jobs() == []
