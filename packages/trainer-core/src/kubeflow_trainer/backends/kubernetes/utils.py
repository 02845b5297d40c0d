"""Upstream's ``kubeflow.trainer.backends.kubernetes.utils``: its public in-job helpers."""

from kubeflow_trainer.tpu import get_tpu_num_nodes
from kubeflow_trainer.trainjob_status import update_trainjob_status

__all__ = ["get_tpu_num_nodes", "update_trainjob_status"]
