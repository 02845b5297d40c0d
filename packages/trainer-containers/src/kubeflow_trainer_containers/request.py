"""The container backend's native request: what :meth:`ContainerBackend.render` builds, what a dry run shows
and what :meth:`ContainerBackend.submit` executes, object for object.

Credentials of initializer steps are :class:`pydantic.SecretStr` (``secret_env``): redacted in ``repr``,
``model_dump`` and ``model_dump_json``; only the engine's create call reads their values.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from kubeflow_trainer.workspace import WorkspaceSnapshot

SECRET_PLACEHOLDER = "<secret>"
"""What an engine-native request shows in place of a credential."""


class ContainerSpec(BaseModel):
    """What to create for one step (a node or an initializer): the engine-neutral create request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    image: str
    command: list[str]
    labels: dict[str, str]
    env: dict[str, str]
    network: str | None
    """The job's own network, or None for the engine's default bridge network (a one-node job: no peers to
    resolve, and nothing per job that holds one of the engine's address pools after the job ends)."""
    hostname: str
    volumes: dict[str, str]
    """Volume name -> mount path."""
    binds: dict[str, str] = Field(default_factory=dict)
    """Host path -> mount path, read-only (a local initializer source, the job's data directories)."""
    secret_env: dict[str, SecretStr] = Field(default_factory=dict)
    """Environment variables holding credentials (an initializer's), set only on this container."""
    working_dir: str = "/workspace"
    cpu: float | None = None
    memory: int | None = None
    shm_size: int | None = None
    gpus: int | None = None
    extended: dict[str, int] = Field(default_factory=dict)

    def mounts(self) -> dict[str, dict[str, str]]:
        """Volumes (read-write) and binds (read-only) in the ``volumes=`` shape docker-py and podman-py share."""
        return {
            **{vol: {"bind": path, "mode": "rw"} for vol, path in self.volumes.items()},
            **{host: {"bind": path, "mode": "ro"} for host, path in self.binds.items()},
        }

    def environment(self, *, reveal_secrets: bool = False) -> dict[str, str]:
        """The container's environment: ``env`` and ``secret_env``, the latter as :data:`SECRET_PLACEHOLDER`
        unless ``reveal_secrets`` (only for the engine's create call)."""
        secrets = {
            key: value.get_secret_value() if reveal_secrets else SECRET_PLACEHOLDER
            for key, value in self.secret_env.items()
        }
        return {**self.env, **secrets}


class NetworkSpec(BaseModel):
    """The job's network (its containers resolve each other by name) or one of its volumes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    labels: dict[str, str]


VolumeSpec = NetworkSpec
"""A named volume: a name and its labels, like a network."""


class WorkspaceVolume(BaseModel):
    """The user's workspace: a named volume keyed by the workspace's content digest, created and filled (one
    archive upload) unless a job shipped the same content before; mounted at :attr:`mount_path` in the node
    containers, whose launcher copies it into the job's working directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    volume: VolumeSpec
    mount_path: str
    snapshot: WorkspaceSnapshot
    """The files that ship (path, size, SHA-256), what was skipped, the digest."""


class ContainerJobRequest(BaseModel):
    """Everything one job creates on a container engine, in the order :meth:`ContainerBackend.submit` creates it.

    ``engine_requests`` are the engine SDK's own ``containers.create`` keyword arguments for ``containers``
    (docker-py's or podman-py's), credentials shown as :data:`SECRET_PLACEHOLDER`: for reading, the engine
    builds them again from ``containers`` when it creates them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    """The job's name (containers, network and volume are labelled with it)."""
    engine: str
    """``docker`` or ``podman``."""
    image: str
    """The job's image (made present according to ``pull_policy`` before anything is created)."""
    pull_policy: str
    network: NetworkSpec | None
    """The job's network, for jobs of several nodes (node 0 is addressed by its container name); None for a
    one-node job, whose containers use the engine's default bridge network (outbound access, no per-job
    network to create, exhaust the engine's address pools with or remove)."""
    volume: VolumeSpec
    """The job's workspace volume."""
    outputs_volume: VolumeSpec | None = None
    """The job's output volume, mounted on every node at ``$KUBEFLOW_TRAINER_OUTPUT_DIR``; read by
    ``get_job_outputs`` (through node 0's container, also after it exited) and removed by ``delete_job``."""
    cache_volumes: list[VolumeSpec] = Field(default_factory=list)
    """Initializer cache volumes, created unless they exist, kept by ``delete_job``."""
    files: dict[str, str]
    """Workspace files (relative path -> content), written before any container starts."""
    workspace: WorkspaceVolume | None = None
    """The user's project (``CustomTrainer(workspace=...)``): a content-addressed volume, filled once."""
    containers: list[ContainerSpec]
    """Initializer steps first, then one container per node."""
    engine_requests: list[dict[str, Any]] = Field(default_factory=list)

    def container(self, name: str) -> ContainerSpec:
        """The container called ``name``; KeyError naming the ones there are."""
        for spec in self.containers:
            if spec.name == name:
                return spec
        raise KeyError(f"no container {name!r} in the request; it has {', '.join(c.name for c in self.containers)}")
