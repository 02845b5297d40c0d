"""Runtime definitions in Kubeflow's ClusterTrainingRuntime shape, and their parser.

The built-in definitions are JSON files next to this module (``torch-distributed.json``), in exactly the
shape of Kubeflow Trainer's ``ClusterTrainingRuntime``, so backends without a cluster describe runtimes the
same way the Kubernetes backend reads them from the cluster (:func:`runtime_from_object` parses both).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from kubeflow_trainer.types import Runtime, RuntimeKind, RuntimeTrainer, TrainerType

FRAMEWORK_LABEL = "trainer.kubeflow.org/framework"
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
PACKAGES_ANNOTATION = "trainer-sdk.kubeflow.org/packages"
DEFAULT_RUNTIME = "torch-distributed"
TRAINER_NODE = "node"


class RuntimeParseError(ValueError):
    """A runtime object does not have the fields the SDK needs."""


def _trainer_container(spec: dict[str, Any]) -> dict[str, Any]:
    jobs = spec.get("template", {}).get("spec", {}).get("replicatedJobs", []) or []
    chosen = None
    for job in jobs:
        labels = job.get("template", {}).get("metadata", {}).get("labels", {}) or {}
        if labels.get(ANCESTOR_LABEL) == "trainer" or job.get("name") == TRAINER_NODE:
            chosen = job
            break
    if chosen is None:
        raise RuntimeParseError("no replicatedJob named 'node' or labelled as the trainer step")
    containers = (
        chosen.get("template", {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", []) or []
    )
    for container in containers:
        if container.get("name") == TRAINER_NODE:
            return dict(container)
    if containers:
        return dict(containers[0])
    raise RuntimeParseError("the trainer replicatedJob has no containers")


def _device(container: dict[str, Any], num_nodes: int, ml_policy: dict[str, Any]) -> tuple[str, str]:
    limits = (container.get("resources") or {}).get("limits") or {}
    for key, device in (("nvidia.com/gpu", "gpu"), ("google.com/tpu", "tpu"), ("huawei.com/Ascend910", "npu")):
        if key in limits:
            return device, str(int(limits[key]) * num_nodes)
    for key in limits:
        if key.startswith("nvidia.com/mig-"):
            return key.removeprefix("nvidia.com/"), str(int(limits[key]) * num_nodes)
    if "cpu" in limits:
        return "cpu", str(limits["cpu"])
    nproc = (ml_policy.get("torch") or {}).get("numProcPerNode")
    if isinstance(nproc, int):
        return "cpu", str(nproc * num_nodes)
    return "Unknown", "Unknown"


def runtime_from_object(obj: dict[str, Any]) -> Runtime:
    """Parse a ClusterTrainingRuntime / TrainingRuntime object (a dict as the API server returns it)."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        raise RuntimeParseError("runtime has no metadata.name")
    labels = metadata.get("labels") or {}
    framework = labels.get(FRAMEWORK_LABEL)
    if not framework:
        raise RuntimeParseError(f"runtime {name!r} has no {FRAMEWORK_LABEL} label")
    spec = obj.get("spec") or {}
    ml_policy = spec.get("mlPolicy") or {}
    num_nodes = int(ml_policy.get("numNodes") or 1)
    container = _trainer_container(spec)
    device, device_count = _device(container, num_nodes, ml_policy)
    packages = (metadata.get("annotations") or {}).get(PACKAGES_ANNOTATION, "")
    kind = RuntimeKind(obj.get("kind", RuntimeKind.CLUSTER_TRAINING_RUNTIME.value))
    trainer = RuntimeTrainer(
        trainer_type=TrainerType.BUILTIN_TRAINER if framework == "torchtune" else TrainerType.CUSTOM_TRAINER,
        framework=framework,
        image=container.get("image", ""),
        num_nodes=num_nodes,
        device=device,
        device_count=device_count,
        command=tuple(container.get("command") or ()),
        packages=tuple(p.strip() for p in packages.split(",") if p.strip()),
    )
    return Runtime(name=name, trainer=trainer, kind=kind, spec=obj)


@lru_cache(maxsize=1)
def _builtin_objects() -> tuple[str, ...]:
    folder = resources.files(__name__)
    return tuple(
        entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    )


def builtin_runtime_objects() -> list[dict[str, Any]]:
    """The built-in runtime definitions as ClusterTrainingRuntime dicts (fresh copies)."""
    return [json.loads(text) for text in _builtin_objects()]


def builtin_runtimes() -> list[Runtime]:
    """The built-in runtimes (``torch-distributed``...)."""
    return [runtime_from_object(obj) for obj in builtin_runtime_objects()]
