"""Upstream's ``kubeflow.trainer.constants.constants``: the public constants code written for upstream uses
(step names for ``get_job_logs(step=...)``, statuses, paths, labels), with upstream's values.

Not here, deliberately: upstream's shell templates for shipping the function (``EXEC_FUNC_SCRIPT``,
``DEFAULT_COMMAND``, ``MPI_COMMAND``, ``TORCH_COMMAND``): this SDK ships it as a Python file, never a shell
string. ``DEFAULT_PIP_INDEX_URLS`` is empty unless the environment variable sets it: an empty list means the
installing machine's pip configuration (see :mod:`kubeflow_trainer.types`).
"""

from __future__ import annotations

import os

from kubeflow_trainer.types import COMPLETE, CREATED, DATASET_PATH, FAILED, MODEL_PATH, RUNNING, WORKSPACE_PATH

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CLUSTER_TRAINING_RUNTIME_KIND = "ClusterTrainingRuntime"
CLUSTER_TRAINING_RUNTIME_PLURAL = "clustertrainingruntimes"
TRAINING_RUNTIME_KIND = "TrainingRuntime"
TRAINING_RUNTIME_PLURAL = "trainingruntimes"
TRAINJOB_KIND = "TrainJob"
TRAINJOB_PLURAL = "trainjobs"
TRAINJOB_CREATED = CREATED
TRAINJOB_RUNNING = RUNNING
TRAINJOB_COMPLETE = COMPLETE
TRAINJOB_FAILED = FAILED
POD_SUCCEEDED = "Succeeded"
POD_PENDING = "Pending"
TRAINJOB_ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
RUNTIME_FRAMEWORK_LABEL = "trainer.kubeflow.org/framework"
DATASET_INITIALIZER = "dataset-initializer"
MODEL_INITIALIZER = "model-initializer"
INITIALIZER_ENV_ACCESS_TOKEN = "ACCESS_TOKEN"
INITIALIZER_DEFAULT_IGNORE_PATTERNS = ["*.msgpack", "*.h5", "*.bin", "*.pt", "*.pth"]
LAUNCHER = "launcher"
NODE = "node"
CPU_LABEL = "cpu"
GPU_LABEL = "nvidia.com/gpu"
GPU_MIG_PREFIX = "nvidia.com/mig-"
TPU_LABEL = "google.com/tpu"
NPU_LABEL = "huawei.com/Ascend910"
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
JOBSET_RJOB_NAME_LABEL = "jobset.sigs.k8s.io/replicatedjob-name"
JOB_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
POD_LABEL_SELECTOR = (
    f"{JOBSET_NAME_LABEL}={{trainjob_name}},{JOBSET_RJOB_NAME_LABEL} "
    f"in ({DATASET_INITIALIZER}, {MODEL_INITIALIZER}, {LAUNCHER}, {NODE})"
)
DEFAULT_PIP_INDEX_URLS = [u.strip() for u in os.getenv("DEFAULT_PIP_INDEX_URLS", "").split(",") if u.strip()]
DEFAULT_MPI_USER_HOME = os.getenv("DEFAULT_MPI_USER_HOME", "/home/mpiuser")
DEFAULT_TRAINING_RUNTIME = os.getenv("DEFAULT_TRAINING_RUNTIME", "torch-distributed")
TORCH_ENV_NUM_PROC_PER_NODE = "PET_NPROC_PER_NODE"
TORCH_TUNE_COMMAND = ("tune", "run")
TORCH_TUNE_INSTRUCT_DATASET = "torchtune.datasets.instruct_dataset"
DEFAULT_FRAMEWORK_IMAGES = {"torch": "pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime"}
JOB_NAME_UUID_LENGTH = 11

__all__ = [
    "API_VERSION",
    "CLUSTER_TRAINING_RUNTIME_KIND",
    "CLUSTER_TRAINING_RUNTIME_PLURAL",
    "CPU_LABEL",
    "DATASET_INITIALIZER",
    "DATASET_PATH",
    "DEFAULT_FRAMEWORK_IMAGES",
    "DEFAULT_MPI_USER_HOME",
    "DEFAULT_PIP_INDEX_URLS",
    "DEFAULT_TRAINING_RUNTIME",
    "GPU_LABEL",
    "GPU_MIG_PREFIX",
    "GROUP",
    "INITIALIZER_DEFAULT_IGNORE_PATTERNS",
    "INITIALIZER_ENV_ACCESS_TOKEN",
    "JOBSET_NAME_LABEL",
    "JOBSET_RJOB_NAME_LABEL",
    "JOB_INDEX_LABEL",
    "JOB_NAME_UUID_LENGTH",
    "LAUNCHER",
    "MODEL_INITIALIZER",
    "MODEL_PATH",
    "NODE",
    "NPU_LABEL",
    "POD_LABEL_SELECTOR",
    "POD_PENDING",
    "POD_SUCCEEDED",
    "RUNTIME_FRAMEWORK_LABEL",
    "TORCH_ENV_NUM_PROC_PER_NODE",
    "TORCH_TUNE_COMMAND",
    "TORCH_TUNE_INSTRUCT_DATASET",
    "TPU_LABEL",
    "TRAINING_RUNTIME_KIND",
    "TRAINING_RUNTIME_PLURAL",
    "TRAINJOB_ANCESTOR_LABEL",
    "TRAINJOB_COMPLETE",
    "TRAINJOB_CREATED",
    "TRAINJOB_FAILED",
    "TRAINJOB_KIND",
    "TRAINJOB_PLURAL",
    "TRAINJOB_RUNNING",
    "VERSION",
    "WORKSPACE_PATH",
]
