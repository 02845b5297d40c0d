"""The Kubernetes backend's native request: what one job creates on the cluster.

:meth:`KubernetesBackend.render` builds it (that is what ``client.dry_run(...).request`` shows) and
:meth:`KubernetesBackend.submit` creates exactly it: the initializer credentials' Secrets first, then the
TrainJob, then the Secrets' owner references to the TrainJob. Credentials are ``SecretStr``: printed and
serialised redacted, sent to the API server as they are.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from kubeflow_trainer.workspace import WorkspaceSnapshot


class InitializerSecret(BaseModel):
    """The Secret holding one initializer's credentials, referenced by ``secretRef`` in the TrainJob."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    target: str
    """``dataset`` or ``model``."""
    labels: dict[str, str]
    data: dict[str, SecretStr]
    """Environment variable -> value, as the Trainer's initializer images read them."""

    def body(self, namespace: str) -> dict[str, Any]:
        """The Secret object for the API server (the only place the values are revealed)."""
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self.name, "namespace": namespace, "labels": dict(self.labels)},
            "type": "Opaque",
            "stringData": {key: value.get_secret_value() for key, value in self.data.items()},
        }


class WorkspaceConfigMap(BaseModel):
    """The user's workspace as a ConfigMap (``binaryData``: one gzip-compressed tar), named by its content
    digest so that jobs shipping the same content share it; each such TrainJob is one of its owners, so the
    cluster collects it with the last of them. The node pods mount it read-only; the launcher unpacks it
    into the job's working directory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    labels: dict[str, str]
    key: str
    """The ``binaryData`` key holding the archive."""
    archive_b64: str = Field(repr=False)
    """The archive, base64-encoded as the API carries ``binaryData``."""
    snapshot: WorkspaceSnapshot
    """The files that ship (path, size, SHA-256), what was skipped, the digest."""

    def body(self, namespace: str) -> dict[str, Any]:
        """The ConfigMap object for the API server."""
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": namespace, "labels": dict(self.labels)},
            "binaryData": {self.key: self.archive_b64},
            "immutable": True,
        }


class KubernetesJobRequest(BaseModel):
    """One job on the cluster: its TrainJob and the Secrets of its initializers' credentials."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    namespace: str
    trainjob: dict[str, Any]
    """The TrainJob in API shape, built with the Trainer API's models (``kubeflow_trainer_api``), callable
    options applied and the result checked against that model. It holds no credential."""
    secrets: tuple[InitializerSecret, ...] = ()
    workspace: WorkspaceConfigMap | None = None
    """The user's project (``CustomTrainer(workspace=...)``), created unless it exists, owned by the TrainJob."""
