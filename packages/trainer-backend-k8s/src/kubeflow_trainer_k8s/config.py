"""Configuration of the Kubernetes backend (upstream field names)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from kubeflow_trainer import BackendConfig


class KubernetesBackendConfig(BackendConfig):
    """Where the cluster is and which namespace jobs live in.

    Args:
        namespace: Namespace of TrainJobs and TrainingRuntimes. Default: the kubeconfig context's namespace,
            else the in-cluster service account's, else ``default``.
        config_file: kubeconfig path (default: ``KUBECONFIG`` or ``~/.kube/config``; in a pod, in-cluster).
        context: kubeconfig context.
        client_configuration: a ready ``kubernetes.client.Configuration`` (overrides the two above).
        request_timeout: Seconds an API call may take.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    namespace: str | None = None
    config_file: str | None = None
    context: str | None = None
    client_configuration: Any = None
    request_timeout: float = Field(default=60, gt=0)
