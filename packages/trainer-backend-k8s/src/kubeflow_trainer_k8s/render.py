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
import posixpath
from importlib import resources
from typing import Any
from urllib.parse import urlparse

from kubeflow_trainer_api import models as api

from kubeflow_trainer import restarts
from kubeflow_trainer.errors import InvalidRequestError
from kubeflow_trainer.jobside import launcher_source
from kubeflow_trainer.outputs import OUTPUT_DIR_ENV
from kubeflow_trainer.plan import JobPlan
from kubeflow_trainer.types import (
    DATASET_PATH,
    BuiltinTrainer,
    CustomTrainer,
    HuggingFaceDatasetInitializer,
    HuggingFaceModelInitializer,
    Initializer,
    S3DatasetInitializer,
    S3ModelInitializer,
)
from kubeflow_trainer_k8s.run_train import TERMINATION_LOG

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
SDK_LABEL = "trainer.kubeflow.org/created-by"
FILES_ENV = "KFT_FILES_B64"
RUN_TRAIN = "run_train.py"
POD_OUTPUT_DIR = "/tmp/kubeflow-trainer/outputs"
"""``$KUBEFLOW_TRAINER_OUTPUT_DIR`` in the pods (created by run_train.py; gone with the pod unless uploaded)."""
OUTPUT_URI_ENV = "KFT_OUTPUT_URI"
"""Where run_train.py uploads the output directory (``OutputStorage``): ``s3://bucket/prefix/<job>``."""
OUTPUTS_ANNOTATION = "trainer.kubeflow.org/sdk-outputs"
"""On the TrainJob: JSON ``{"uri": ..., "endpoint_url": ...}`` of its ``OutputStorage``, read by
``get_job_outputs`` (from any client)."""
S3_SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
"""Shipped next to train.py: runs it and records its uncaught exception as the pod's termination message."""
TORCH_TUNE_COMMAND = ("tune", "run")
"""The command of a torchtune TrainJob: the Trainer's torchtune plugin acts on TrainJobs with it."""
TORCH_TUNE_INSTRUCT_DATASET = "torchtune.datasets.instruct_dataset"

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


def _dataset_location_arg(initializer: Initializer | None) -> list[str]:
    """Where the dataset initializer puts an ``hf://`` dataset, as the torchtune recipe reads it (upstream's
    rule: a path with a file extension is ``dataset.data_files``, otherwise ``dataset.data_dir``)."""
    if initializer is None or not isinstance(initializer.dataset, HuggingFaceDatasetInitializer):
        return []
    uri = initializer.dataset.storage_uri
    uri = uri if uri.startswith("hf://") else f"hf://{uri}"
    parts = urlparse(uri).path.strip("/").split("/")
    relative = "/".join(parts[1:]) if len(parts) > 1 else "."
    if relative != "." and "." in relative:
        return [f"dataset.data_files={posixpath.join(DATASET_PATH, relative)}"]
    return [f"dataset.data_dir={posixpath.join(DATASET_PATH, relative)}"]


def torchtune_args(trainer: BuiltinTrainer, initializer: Initializer | None) -> list[str]:
    """The recipe/config overrides the Trainer's torchtune plugin merges into the runtime's ``tune run``
    command, from TorchTuneConfig, its LoraConfig and TorchTuneInstructDataset (upstream's order and format)."""
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
    args += _dataset_location_arg(initializer)
    if cfg.peft_config:
        lora = cfg.peft_config
        for key in (
            "apply_lora_to_mlp",
            "apply_lora_to_output",
            "lora_rank",
            "lora_alpha",
            "lora_dropout",
            "quantize_base",
            "use_dora",
        ):
            value = getattr(lora, key)
            if value is not None:
                args.append(f"model.{key}={value}")
        if lora.lora_attn_modules:
            args.append(f"model.lora_attn_modules=[{','.join(lora.lora_attn_modules)}]")
    if cfg.dataset_preprocess_config:
        ds = cfg.dataset_preprocess_config
        args.append(f"dataset={TORCH_TUNE_INSTRUCT_DATASET}")
        if ds.source:
            args.append(f"dataset.source={ds.source.value}")
        if ds.split:
            args.append(f"dataset.split={ds.split}")
        if ds.train_on_input is not None:
            args.append(f"dataset.train_on_input={ds.train_on_input}")
        if ds.new_system_prompt:
            args.append(f"dataset.new_system_prompt={ds.new_system_prompt}")
        if ds.column_map:
            args.append(f"dataset.column_map={ds.column_map}")  # a Python dict literal, as upstream sends it
    return args


def _env_vars(env: dict[str, str]) -> list[api.IoK8sApiCoreV1EnvVar]:
    return [api.IoK8sApiCoreV1EnvVar(name=e["name"], value=e["value"]) for e in _env_list(env)]


def _trainer(plan: JobPlan) -> api.TrainerV1alpha1Trainer | None:
    """``spec.trainer``: node count, resources, image, env and the entrypoint for the trainer kind."""
    trainer = api.TrainerV1alpha1Trainer()
    if plan.num_nodes:
        trainer.num_nodes = plan.num_nodes
    if not plan.resources.empty:
        quantities = plan.resources.kubernetes_quantities()
        trainer.resources_per_node = api.IoK8sApiCoreV1ResourceRequirements.from_dict(
            {"requests": quantities, "limits": quantities}
        )
    if plan.image and (getattr(plan.trainer, "image", None) is not None):
        trainer.image = plan.image
    env = dict(plan.env)
    if plan.max_restarts:
        # torchrun reads PET_<FLAG> as the default of --<flag>: the pods' torchrun restarts its workers. The
        # TrainJob API (v2.3) has no JobSet failurePolicy field; a runtime's own failurePolicy still applies.
        env["PET_MAX_RESTARTS"] = str(plan.max_restarts)
        # each restart is recorded in the container's termination message (read back into Step.restarts and a
        # Restarted event once the node's container ended: the kubelet copies the file when it ends)
        env[restarts.RECORDS_FILE_ENV] = TERMINATION_LOG
    if isinstance(plan.trainer, CustomTrainer):
        files = {"train.py": plan.files[plan.script or "train.py"]}
        files["launch.py"] = launcher_source()
        files[RUN_TRAIN] = resources.files("kubeflow_trainer_k8s").joinpath(RUN_TRAIN).read_text()
        env[FILES_ENV] = base64.b64encode(json.dumps(files).encode()).decode()
        if plan.workspace is not None:
            env["KFT_WORKSPACE_ARCHIVE"] = f"{WORKSPACE_MOUNT}/{WORKSPACE_KEY}"
            env["KFT_WORKSPACE_DIR"] = "workspace"  # next to the launcher, in the pod's temporary directory
            env["KFT_WORKSPACE_DIGEST"] = plan.workspace.digest
        if plan.packages_to_install:
            env["KFT_PACKAGES"] = json.dumps(plan.packages_to_install)
            pip_args: list[str] = []
            for i, url in enumerate(plan.pip_index_urls or []):
                pip_args += ["--index-url" if i == 0 else "--extra-index-url", url]
            env["KFT_PIP_ARGS"] = json.dumps(pip_args)
        # run_train.py runs train.py and records an uncaught exception in the pod's termination message.
        script = [f"{{dir}}/{RUN_TRAIN}", "{dir}/train.py"]
        runner = ["torchrun", *script] if plan.framework == "torch" else ["python3", *script]
        trainer.command = ["python3", "-c", BOOTSTRAP, *runner]
        if plan.procs_per_node > 1 or not plan.resources.empty:
            trainer.num_proc_per_node = plan.procs_per_node
    elif plan.trainer_kind == "container":
        if plan.container_command:
            trainer.command = [c.replace("$", "$$") for c in plan.container_command]
        if plan.container_args:
            trainer.args = [a.replace("$", "$$") for a in plan.container_args]
    elif isinstance(plan.trainer, BuiltinTrainer):
        # The Trainer's torchtune plugin validates and rewrites the runtime's recipe command only when the
        # TrainJob's command is `tune run`; the args are the config overrides it merges in.
        trainer.command = list(TORCH_TUNE_COMMAND)
        trainer.args = torchtune_args(plan.trainer, plan.initializer)
    if plan.trainer_kind in ("custom", "container"):
        env[OUTPUT_DIR_ENV] = POD_OUTPUT_DIR
    storage = plan.output_storage
    if storage is not None:
        if not isinstance(plan.trainer, CustomTrainer):
            raise InvalidRequestError(
                "OutputStorage uploads the output directory from the SDK's job script, which only CustomTrainer "
                "jobs run; with another trainer, upload from your own code"
            )
        env[OUTPUT_URI_ENV] = storage.job_uri(plan.name)
        if storage.endpoint_url:
            env["AWS_ENDPOINT_URL"] = storage.endpoint_url  # boto3 (>= 1.28) honours it
    if env:
        trainer.env = _env_vars(env)
        if storage is not None and storage.secret:
            trainer.env += [
                api.IoK8sApiCoreV1EnvVar(
                    name=key,
                    value_from=api.IoK8sApiCoreV1EnvVarSource(
                        secret_key_ref=api.IoK8sApiCoreV1SecretKeySelector(name=storage.secret, key=key)
                    ),
                )
                for key in S3_SECRET_KEYS
            ]
    return None if trainer == api.TrainerV1alpha1Trainer() else trainer


def outputs_annotation(plan: JobPlan) -> dict[str, str]:
    """The TrainJob annotation recording where its outputs go (empty without ``OutputStorage``)."""
    storage = plan.output_storage
    if storage is None:
        return {}
    record = {"uri": storage.job_uri(plan.name), "endpoint_url": storage.endpoint_url}
    return {OUTPUTS_ANNOTATION: json.dumps(record, sort_keys=True)}


def _initializer(plan: JobPlan) -> api.TrainerV1alpha1Initializer:
    raw = render_initializer(plan, dict(os.environ))
    return api.TrainerV1alpha1Initializer(
        dataset=api.TrainerV1alpha1DatasetInitializer.from_dict(raw["dataset"]) if "dataset" in raw else None,
        model=api.TrainerV1alpha1ModelInitializer.from_dict(raw["model"]) if "model" in raw else None,
    )


def _patches(plan: JobPlan) -> list[dict[str, Any]]:
    patches = list(plan.runtime_patches)
    if plan.workspace is not None and isinstance(plan.trainer, CustomTrainer):
        patches.append(workspace_patch(workspace_configmap_name(plan.workspace.digest)))
    return patches


def render_trainjob(plan: JobPlan, namespace: str) -> dict[str, Any]:
    """The TrainJob for ``plan`` in ``namespace``, built with the Trainer API's own models
    (``kubeflow_trainer_api``), as a dict in API shape. Callable options are not applied here
    (see :func:`apply_callable_options`)."""
    kind = plan.runtime.kind.value if hasattr(plan.runtime.kind, "value") else str(plan.runtime.kind)
    spec = api.TrainerV1alpha1TrainJobSpec(
        runtime_ref=api.TrainerV1alpha1RuntimeRef(name=plan.runtime.name, kind=kind, api_group=GROUP),
        trainer=_trainer(plan),
        runtime_patches=[_runtime_patch(p) for p in _patches(plan)] or None,
        active_deadline_seconds=plan.active_deadline_seconds or None,
    )
    if plan.initializer is not None and (plan.initializer.dataset or plan.initializer.model):
        spec.initializer = _initializer(plan)
    metadata = api.IoK8sApimachineryPkgApisMetaV1ObjectMeta(
        name=plan.name,
        namespace=namespace,
        labels={**plan.labels, SDK_LABEL: "kubeflow-trainer-sdk"},
        annotations={**plan.annotations, **outputs_annotation(plan)} or None,
    )
    job = api.TrainerV1alpha1TrainJob(api_version=API_VERSION, kind="TrainJob", metadata=metadata, spec=spec)
    body: dict[str, Any] = job.to_dict()
    return body


WORKSPACE_MOUNT = "/opt/kft/workspace"
WORKSPACE_KEY = "workspace.tar.gz"
WORKSPACE_VOLUME = "kft-workspace"
WORKSPACE_MANAGER = "trainer.kubeflow.org/kubeflow-sdk-workspace"
WORKSPACE_LIMIT = 1_000_000
"""Largest compressed workspace (bytes): the API server refuses a ConfigMap over 1 MiB (1048576 bytes of
data); the rest is headroom for the object's metadata."""
TRAINER_CONTAINER = "node"
"""The trainer's replicated job and container in the Trainer's torch runtimes."""


def workspace_configmap_name(digest: str) -> str:
    """The ConfigMap of a workspace content: ``kft-ws-<first 16 hex digits of the digest>``."""
    return f"kft-ws-{digest[:16]}"


def workspace_patch(configmap: str) -> dict[str, Any]:
    """The runtime patch that mounts the workspace ConfigMap read-only into the trainer containers."""
    pod = {
        "volumes": [{"name": WORKSPACE_VOLUME, "configMap": {"name": configmap}}],
        "containers": [
            {
                "name": TRAINER_CONTAINER,
                "volumeMounts": [{"name": WORKSPACE_VOLUME, "mountPath": WORKSPACE_MOUNT, "readOnly": True}],
            }
        ],
    }
    job = {"name": TRAINER_CONTAINER, "template": {"spec": {"template": {"spec": pod}}}}
    return {"manager": WORKSPACE_MANAGER, "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [job]}}}}


def _runtime_patch(patch: dict[str, Any]) -> api.TrainerV1alpha1RuntimePatch:
    """One ``spec.runtimePatches`` entry; a field the Trainer API does not know is refused, not dropped."""
    model = api.TrainerV1alpha1RuntimePatch.from_dict(patch)
    assert model is not None
    unknown = unknown_fields(patch, model.to_dict())
    if unknown:
        raise InvalidRequestError(
            f"RuntimePatch: the Trainer API ({VERSION}) has no field {', '.join(unknown)}; check the spelling "
            "against the (Cluster)TrainingRuntime spec (camelCase keys), or use the typed patch classes "
            "(TrainingRuntimeSpecPatch, JobSetTemplatePatch, ...)"
        )
    return model


def unknown_fields(given: Any, known: Any, path: str = "") -> list[str]:
    """Paths of keys in ``given`` that a model round trip (``known``) dropped, i.e. fields the API lacks."""
    out: list[str] = []
    if isinstance(given, dict) and isinstance(known, dict):
        for key, value in given.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in known:
                if value is not None:
                    out.append(where)
            else:
                out += unknown_fields(value, known[key], where)
    elif isinstance(given, list) and isinstance(known, list):
        for i, (a, b) in enumerate(zip(given, known, strict=False)):
            out += unknown_fields(a, b, f"{path}[{i}]")
    return out


def _describe(option: Any) -> str:
    name = getattr(option, "__qualname__", None) or type(option).__qualname__
    module = getattr(option, "__module__", None) or type(option).__module__
    return f"{module}.{name}"


def apply_callable_options(body: dict[str, Any], plan: JobPlan, backend: Any) -> dict[str, Any]:
    """Call each callable option ``option(job_spec, trainer, backend)`` on the TrainJob body, in order (as
    upstream's protocol), then check the result against the Trainer API's TrainJob model: a failing option, a
    changed name or namespace, a field the API does not know or a wrong type is an InvalidRequestError."""
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    for option in plan.callable_options:
        try:
            option(body, plan.trainer, backend)
        except Exception as exc:
            hint = ""
            if type(option).__module__.startswith("kubeflow.trainer"):
                hint = f" Use kubeflow_trainer.options.{type(option).__name__} instead of upstream's class."
            raise InvalidRequestError(
                f"option {_describe(option)} failed on the TrainJob body: {type(exc).__name__}: {exc}.{hint}"
            ) from exc
    meta = body.get("metadata") or {}
    if meta.get("name") != name or meta.get("namespace") != namespace:
        raise InvalidRequestError(
            "a callable option changed the TrainJob's metadata.name or metadata.namespace; set the name with the "
            "Name option and the namespace with KubernetesBackendConfig(namespace=...)"
        )
    try:
        model = api.TrainerV1alpha1TrainJob.from_dict(body)
    except ValueError as exc:  # pydantic's ValidationError
        raise InvalidRequestError(f"the callable options made an invalid TrainJob: {exc}") from exc
    assert model is not None
    unknown = unknown_fields(body, model.to_dict())
    if unknown:
        raise InvalidRequestError(
            f"the callable options set field(s) the TrainJob API ({VERSION}) does not have: {', '.join(unknown)}; "
            "check the spelling (camelCase keys, as in the TrainJob spec)"
        )
    return body
