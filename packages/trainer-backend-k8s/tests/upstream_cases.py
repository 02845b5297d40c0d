"""Requests built the same way with upstream ``kubeflow.trainer`` 0.5.0 and with ``kubeflow_trainer``: only the
namespace the names come from differs (the point of "ports by changing imports"). No import of either SDK here:
upstream_bodies.py (run in upstream's venv) and test_upstream_bodies.py (ours) pass their modules in.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

TORCHTUNE_RUNTIME: dict[str, Any] = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "ClusterTrainingRuntime",
    "metadata": {"name": "torchtune-llama3.2-1b", "labels": {"trainer.kubeflow.org/framework": "torchtune"}},
    "spec": {
        "mlPolicy": {"numNodes": 1, "torch": {}},
        "template": {
            "spec": {
                "replicatedJobs": [
                    {
                        "name": "node",
                        "template": {
                            "metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}},
                            "spec": {
                                "template": {
                                    "spec": {
                                        "containers": [
                                            {
                                                "name": "node",
                                                "image": "ghcr.io/kubeflow/trainer/torchtune-trainer:v2.3.0",
                                                "command": [
                                                    "tune",
                                                    "run",
                                                    "--rdzv_endpoint=localhost:29500",
                                                    "full_finetune_distributed",
                                                    "--config",
                                                    "llama3_2/1B_full",
                                                ],
                                            }
                                        ]
                                    }
                                }
                            },
                        },
                    }
                ]
            }
        },
    },
}
"""The shape of the Trainer manifests' torchtune-llama3.2-1b ClusterTrainingRuntime (trainer part)."""


CASE_NAMES = [
    "custom-with-options",
    "custom-with-a-callable-option",
    "torchtune-full",
    "torchtune-data-file",
    "torchtune-defaults",
]
"""The keys of :func:`cases`."""
TYPE_NAMES = [
    "CustomTrainer",
    "BuiltinTrainer",
    "TorchTuneConfig",
    "LoraConfig",
    "TorchTuneInstructDataset",
    "DataType",
    "Loss",
    "DataFormat",
    "Initializer",
    "HuggingFaceDatasetInitializer",
    "HuggingFaceModelInitializer",
]
"""Names the cases take from the SDK's top-level module (``kubeflow.trainer`` / ``kubeflow_trainer``)."""
OPTION_NAMES = [
    "Name",
    "Labels",
    "Annotations",
    "ActiveDeadlineSeconds",
    "RuntimePatch",
    "TrainingRuntimeSpecPatch",
    "JobSetTemplatePatch",
    "JobSetSpecPatch",
    "ReplicatedJobPatch",
    "JobTemplatePatch",
    "JobSpecPatch",
    "PodTemplatePatch",
    "PodSpecPatch",
    "ContainerPatch",
]
"""Names the cases take from the SDK's ``options`` module."""


def names_from(sdk: Any, options: Any) -> SimpleNamespace:
    """The names the cases use, from one SDK's modules."""
    return SimpleNamespace(**{n: getattr(sdk, n) for n in TYPE_NAMES}, **{n: getattr(options, n) for n in OPTION_NAMES})


def train_fn(epochs: int = 1) -> None:
    """A training function (its source is shipped by both SDKs)."""
    print("epochs", epochs)


def add_team_label(job_spec: dict[str, Any], trainer: Any, backend: Any) -> None:
    """A user's own callable option, written against upstream's protocol."""
    job_spec.setdefault("metadata", {}).setdefault("labels", {})["team"] = "ml"


def full_runtime_patch(o: SimpleNamespace) -> Any:
    """Every level of upstream's nested patch types, with list, dict and scalar fields."""
    return o.RuntimePatch(
        training_runtime_spec=o.TrainingRuntimeSpecPatch(
            template=o.JobSetTemplatePatch(
                metadata={"labels": {"jobset": "patched"}},
                spec=o.JobSetSpecPatch(
                    replicated_jobs=[
                        o.ReplicatedJobPatch(
                            name="node",
                            template=o.JobTemplatePatch(
                                metadata={"annotations": {"job": "patched"}},
                                spec=o.JobSpecPatch(
                                    template=o.PodTemplatePatch(
                                        metadata={"labels": {"pod": "patched"}},
                                        spec=o.PodSpecPatch(
                                            service_account_name="default",
                                            node_selector={"kubernetes.io/os": "linux"},
                                            tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                                            volumes=[{"name": "scratch", "emptyDir": {}}],
                                            image_pull_secrets=[{"name": "regcred"}],
                                            security_context={"runAsNonRoot": True},
                                            affinity={
                                                "nodeAffinity": {
                                                    "requiredDuringSchedulingIgnoredDuringExecution": {
                                                        "nodeSelectorTerms": [
                                                            {
                                                                "matchExpressions": [
                                                                    {
                                                                        "key": "pool",
                                                                        "operator": "In",
                                                                        "values": ["train"],
                                                                    }
                                                                ]
                                                            }
                                                        ]
                                                    }
                                                }
                                            },
                                            scheduling_gates=[{"name": "example.com/gate"}],
                                            containers=[
                                                o.ContainerPatch(
                                                    name="node",
                                                    env=[
                                                        {"name": "A", "value": "1"},
                                                        {
                                                            "name": "TOKEN",
                                                            "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                                                        },
                                                    ],
                                                    volume_mounts=[{"name": "scratch", "mountPath": "/scratch"}],
                                                    security_context={"allowPrivilegeEscalation": False},
                                                )
                                            ],
                                            init_containers=[
                                                o.ContainerPatch(name="init", env=[{"name": "B", "value": "2"}])
                                            ],
                                        ),
                                    )
                                ),
                            ),
                        )
                    ]
                ),
            )
        )
    )


def cases(o: SimpleNamespace) -> dict[str, dict[str, Any]]:
    """name -> train() keyword arguments (runtime given by name: 'torch' or 'torchtune')."""
    return {
        "custom-with-options": {
            "runtime": "torch",
            "trainer": o.CustomTrainer(
                func=train_fn,
                func_args={"epochs": 2},
                num_nodes=2,
                resources_per_node={"cpu": 2, "memory": "4Gi", "gpu": 1},
            ),
            "options": [
                o.Name(name="opts-job"),
                o.Labels(labels={"team": "ml", "app.kubernetes.io/part-of": "tests"}),
                o.Annotations(annotations={"example.com/note": "compared with upstream"}),
                full_runtime_patch(o),
                o.ActiveDeadlineSeconds(seconds=600),
            ],
        },
        "custom-with-a-callable-option": {
            "runtime": "torch",
            "trainer": o.CustomTrainer(func=train_fn),
            "options": [o.Name(name="callable-job"), add_team_label],
        },
        "torchtune-full": {
            "runtime": "torchtune",
            "trainer": o.BuiltinTrainer(
                config=o.TorchTuneConfig(
                    dtype=o.DataType.BF16,
                    batch_size=2,
                    epochs=1,
                    loss=o.Loss.CEWithChunkedOutputLoss,
                    num_nodes=1,
                    resources_per_node={"gpu": 1},
                    peft_config=o.LoraConfig(
                        apply_lora_to_mlp=True,
                        apply_lora_to_output=False,
                        lora_rank=8,
                        lora_alpha=16,
                        lora_dropout=0.1,
                        quantize_base=False,
                        use_dora=True,
                    ),
                    dataset_preprocess_config=o.TorchTuneInstructDataset(
                        source=o.DataFormat.JSON,
                        split="train[:10%]",
                        train_on_input=True,
                        new_system_prompt="Answer briefly.",
                        column_map={"input": "question", "output": "answer"},
                    ),
                )
            ),
            "initializer": o.Initializer(
                dataset=o.HuggingFaceDatasetInitializer(storage_uri="hf://tatsu-lab/alpaca/data"),
                model=o.HuggingFaceModelInitializer(storage_uri="hf://meta-llama/Llama-3.2-1B-Instruct"),
            ),
            "options": [o.Name(name="tune-full")],
        },
        "torchtune-data-file": {
            "runtime": "torchtune",
            "trainer": o.BuiltinTrainer(config=o.TorchTuneConfig(epochs=2, peft_config=o.LoraConfig())),
            "initializer": o.Initializer(dataset=o.HuggingFaceDatasetInitializer(storage_uri="hf://org/ds/train.json")),
            "options": [o.Name(name="tune-file")],
        },
        "torchtune-defaults": {
            "runtime": "torchtune",
            "trainer": o.BuiltinTrainer(config=o.TorchTuneConfig()),
            "initializer": o.Initializer(dataset=o.HuggingFaceDatasetInitializer(storage_uri="hf://org/ds")),
            "options": [o.Name(name="tune-defaults")],
        },
    }
