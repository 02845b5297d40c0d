"""The one place where a job plan becomes a Kubeflow Trainer ``TrainJob`` object.

User code reaches the pod without any shell and without Kubernetes' ``$(VAR)`` expansion: the shipped files
travel base64-encoded in one environment variable, and a short Python bootstrap (no ``$`` in it) writes them
to a temporary directory and runs ``torchrun`` on the script (the Trainer runtime injects the ``PET_*``
rendezvous variables), after installing ``packages_to_install`` when there are any.
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from typing import Any

from kubeflow_trainer.plan import JobPlan
from kubeflow_trainer.types import (
    BuiltinTrainer,
    CustomTrainer,
    HuggingFaceDatasetInitializer,
    HuggingFaceModelInitializer,
    S3DatasetInitializer,
    S3ModelInitializer,
)

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
SDK_LABEL = "trainer.kubeflow.org/created-by"
FILES_ENV = "KFT_FILES_B64"

BOOTSTRAP = (
    "import base64,json,os,sys,tempfile\n"
    "d=tempfile.mkdtemp(prefix='kft-')\n"
    f"files=json.loads(base64.b64decode(os.environ['{FILES_ENV}']))\n"
    "for p,c in files.items():\n"
    "    open(os.path.join(d,p),'w').write(c)\n"
    "argv=[sys.executable,os.path.join(d,'launch.py')]+[a.replace('{dir}',d) for a in sys.argv[1:]]\n"
    "os.execv(sys.executable,argv)\n"
)
"""Python run with ``python3 -c``: unpacks the files, then hands over to the launcher."""


def _env_list(env: dict[str, str]) -> list[dict[str, str]]:
    # Kubernetes expands $(VAR) in env values; $$ is its escape for a literal $.
    return [{"name": k, "value": v.replace("$", "$$")} for k, v in env.items()]


def _initializer_env(init: Any) -> list[dict[str, str]]:
    env: dict[str, str] = {}
    fields = {
        HuggingFaceDatasetInitializer: ("access_token", "ignore_patterns"),
        HuggingFaceModelInitializer: ("access_token", "ignore_patterns"),
        S3DatasetInitializer: (
            "endpoint",
            "access_key_id",
            "secret_access_key",
            "region",
            "role_arn",
            "ignore_patterns",
        ),
        S3ModelInitializer: ("endpoint", "access_key_id", "secret_access_key", "region", "role_arn", "ignore_patterns"),
    }.get(type(init), ())
    for field in fields:
        value = getattr(init, field, None)
        if value:
            env[field.upper()] = ",".join(value) if isinstance(value, list) else str(value)
    return _env_list(env)


def _builtin_args(trainer: BuiltinTrainer) -> list[str]:
    cfg = trainer.config
    args = []
    if cfg.dtype:
        args.append(f"dtype={cfg.dtype.value}")
    if cfg.batch_size:
        args.append(f"batch_size={cfg.batch_size}")
    if cfg.epochs:
        args.append(f"epochs={cfg.epochs}")
    if cfg.loss:
        args.append(f"loss={cfg.loss.value}")
    if cfg.peft_config:
        lora = cfg.peft_config
        for key in (
            "lora_rank",
            "lora_alpha",
            "lora_dropout",
            "apply_lora_to_mlp",
            "apply_lora_to_output",
            "quantize_base",
            "use_dora",
        ):
            value = getattr(lora, key)
            if value is not None:
                args.append(f"model.{key}={value}")
        args.append(f"model.lora_attn_modules=[{','.join(lora.lora_attn_modules)}]")
    if cfg.dataset_preprocess_config:
        ds = cfg.dataset_preprocess_config
        args.append("dataset=torchtune.datasets.instruct_dataset")
        if ds.source:
            args.append(f"dataset.source={ds.source.value}")
        if ds.split:
            args.append(f"dataset.split={ds.split}")
        if ds.train_on_input is not None:
            args.append(f"dataset.train_on_input={ds.train_on_input}")
        if ds.new_system_prompt:
            args.append(f"dataset.new_system_prompt={ds.new_system_prompt}")
        if ds.column_map:
            args.append(f"dataset.column_map={json.dumps(ds.column_map)}")
    return args


def render_trainjob(plan: JobPlan, namespace: str) -> dict[str, Any]:
    """The TrainJob for ``plan`` in ``namespace``."""
    kind = plan.runtime.kind.value if hasattr(plan.runtime.kind, "value") else str(plan.runtime.kind)
    trainer: dict[str, Any] = {}
    if plan.num_nodes:
        trainer["numNodes"] = plan.num_nodes
    if not plan.resources.empty:
        quantities = plan.resources.kubernetes_quantities()
        trainer["resourcesPerNode"] = {"requests": quantities, "limits": quantities}
    if plan.image and (getattr(plan.trainer, "image", None) is not None):
        trainer["image"] = plan.image
    env = dict(plan.env)
    if isinstance(plan.trainer, CustomTrainer):
        files = {"train.py": plan.files["train.py"]}
        files["launch.py"] = resources.files("kubeflow_trainer.containers").joinpath("launcher.py").read_text()
        env[FILES_ENV] = base64.b64encode(json.dumps(files).encode()).decode()
        if plan.packages_to_install:
            env["KFT_PACKAGES"] = json.dumps(plan.packages_to_install)
            pip_args: list[str] = []
            for i, url in enumerate(plan.pip_index_urls or []):
                pip_args += ["--index-url" if i == 0 else "--extra-index-url", url]
            env["KFT_PIP_ARGS"] = json.dumps(pip_args)
        runner = ["torchrun", "{dir}/train.py"] if plan.framework == "torch" else ["python3", "{dir}/train.py"]
        trainer["command"] = ["python3", "-c", BOOTSTRAP, *runner]
        if plan.procs_per_node > 1 or not plan.resources.empty:
            trainer["numProcPerNode"] = plan.procs_per_node
    elif plan.trainer_kind == "container":
        if plan.container_command:
            trainer["command"] = [c.replace("$", "$$") for c in plan.container_command]
        if plan.container_args:
            trainer["args"] = [a.replace("$", "$$") for a in plan.container_args]
    elif isinstance(plan.trainer, BuiltinTrainer):
        args = _builtin_args(plan.trainer)
        if args:
            trainer["args"] = args
    if env:
        trainer["env"] = _env_list(env)
    spec: dict[str, Any] = {"runtimeRef": {"name": plan.runtime.name, "kind": kind, "apiGroup": GROUP}}
    if trainer:
        spec["trainer"] = trainer
    if plan.initializer is not None:
        init: dict[str, Any] = {}
        if plan.initializer.dataset is not None:
            init["dataset"] = {"storageUri": plan.initializer.dataset.storage_uri}
            env_list = _initializer_env(plan.initializer.dataset)
            if env_list:
                init["dataset"]["env"] = env_list
        if plan.initializer.model is not None:
            init["model"] = {"storageUri": plan.initializer.model.storage_uri}
            env_list = _initializer_env(plan.initializer.model)
            if env_list:
                init["model"]["env"] = env_list
        spec["initializer"] = init
    if plan.runtime_patches:
        spec["runtimePatches"] = plan.runtime_patches
    if plan.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = plan.active_deadline_seconds
    metadata: dict[str, Any] = {
        "name": plan.name,
        "namespace": namespace,
        "labels": {**plan.labels, SDK_LABEL: "kubeflow-trainer-sdk"},
    }
    if plan.annotations:
        metadata["annotations"] = dict(plan.annotations)
    return {"apiVersion": API_VERSION, "kind": "TrainJob", "metadata": metadata, "spec": spec}
