"""The one place where a job plan becomes a Kubeflow Trainer ``TrainJob`` object.

User code reaches the pod without any shell and without Kubernetes' ``$(VAR)`` expansion: the shipped files
travel base64-encoded in one environment variable, and a short Python bootstrap (no ``$`` in it) writes them
to a temporary directory and runs ``torchrun`` on the script (the Trainer runtime injects the ``PET_*``
rendezvous variables), after installing ``packages_to_install`` when there are any.
"""

from __future__ import annotations

import base64
import json
import os
from importlib import resources
from typing import Any

from kubeflow_trainer.errors import InvalidRequestError
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


_SECRET_FIELDS = ("access_token", "access_key_id", "secret_access_key")
_PLAIN_FIELDS: dict[type, tuple[str, ...]] = {
    HuggingFaceDatasetInitializer: ("ignore_patterns",),
    HuggingFaceModelInitializer: ("ignore_patterns",),
    S3DatasetInitializer: ("endpoint", "region", "role_arn", "ignore_patterns"),
    S3ModelInitializer: ("endpoint", "region", "role_arn", "ignore_patterns"),
}
_NOT_ON_KUBERNETES = {
    "revision": "pin the revision in the repository instead, or run on local/docker/podman",
    "allow_patterns": "use ignore_patterns, or run on local/docker/podman",
    "cache": "the Trainer's initializers write into the job's own volume; drop cache=",
}


def initializer_secret_name(job: str, target: str) -> str:
    """The Secret holding the credentials of ``target`` (``dataset``/``model``) of ``job``."""
    return f"{job}-{target}-initializer"


def _check_initializer(target: str, init: Any) -> None:
    """Refuse what the Trainer runtimes' initializer images cannot do, before anything is created."""
    kind = type(init).__name__
    if type(init) not in _PLAIN_FIELDS and kind != "DataCacheInitializer":
        raise InvalidRequestError(
            f"{kind} is not supported on kubernetes: the Trainer's {target} initializer fetches hf://, s3:// "
            f"and cache:// URIs; upload the data to S3 or the Hub, or run on local/docker/podman"
        )
    for field, hint in _NOT_ON_KUBERNETES.items():
        if getattr(init, field, None):
            raise InvalidRequestError(f"{kind}.{field} is not supported on kubernetes: {hint}")


def _initializer_env(init: Any, environ: dict[str, str]) -> list[dict[str, str]]:
    """Non-secret settings as the Trainer's initializer images read them (upper-cased field names)."""
    env: dict[str, str] = {}
    for field in _PLAIN_FIELDS.get(type(init), ()):
        value = getattr(init, field, None)
        if value:
            env[field.upper()] = ",".join(value) if isinstance(value, list) else str(value)
    if isinstance(init, (HuggingFaceDatasetInitializer, HuggingFaceModelInitializer)):
        endpoint = init.endpoint or environ.get("HF_ENDPOINT")
        if endpoint:
            env["HF_ENDPOINT"] = endpoint  # huggingface_hub in the initializer image honours it
    if type(init).__name__ == "DataCacheInitializer":
        env["CLUSTER_SIZE"] = str(init.num_data_nodes + 1)
        env["METADATA_LOC"] = init.metadata_loc
        for field in ("head_cpu", "head_mem", "worker_cpu", "worker_mem", "iam_role"):
            if getattr(init, field, None):
                env[field.upper()] = str(getattr(init, field))
    return _env_list(env)


def initializer_secrets(plan: JobPlan) -> dict[str, dict[str, str]]:
    """Credentials per initializer target (``dataset``/``model`` -> env name -> value); they travel in a
    Secret referenced by ``secretRef``, never in the TrainJob."""
    out: dict[str, dict[str, str]] = {}
    if plan.initializer is None:
        return out
    for target in ("dataset", "model"):
        init = getattr(plan.initializer, target)
        values = {f.upper(): str(getattr(init, f)) for f in _SECRET_FIELDS if getattr(init, f, None)}
        if values:
            out[target] = values
    return out


def render_initializer(plan: JobPlan, environ: dict[str, str]) -> dict[str, Any]:
    """``spec.initializer`` of the TrainJob: storageUri, env, and secretRef when there are credentials."""
    assert plan.initializer is not None
    secrets = initializer_secrets(plan)
    out: dict[str, Any] = {}
    for target in ("dataset", "model"):
        init = getattr(plan.initializer, target)
        if init is None:
            continue
        _check_initializer(target, init)
        entry: dict[str, Any] = {"storageUri": init.storage_uri}
        env_list = _initializer_env(init, environ)
        if env_list:
            entry["env"] = env_list
        if target in secrets:
            entry["secretRef"] = {"name": initializer_secret_name(plan.name, target)}
        out[target] = entry
    return out


def render_secret(job: str, target: str, values: dict[str, str], namespace: str) -> dict[str, Any]:
    """The Secret of one initializer's credentials."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": initializer_secret_name(job, target),
            "namespace": namespace,
            "labels": {SDK_LABEL: "kubeflow-trainer-sdk", "trainer.kubeflow.org/trainjob-name": job},
        },
        "type": "Opaque",
        "stringData": values,
    }


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
    if plan.initializer is not None and (plan.initializer.dataset or plan.initializer.model):
        spec["initializer"] = render_initializer(plan, dict(os.environ))
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
