"""The container backend's native request: what :meth:`ContainerBackend.render` builds, what a dry run shows
and what :meth:`ContainerBackend.submit` executes, object for object.

Credentials of initializer steps are :class:`pydantic.SecretStr` (``secret_env``): redacted in ``repr``,
``model_dump`` and ``model_dump_json``; only the engine's create call reads their values.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

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
    network: str
    hostname: str
    volumes: dict[str, str]
    """Volume name -> mount path."""
    binds: dict[str, str] = Field(default_factory=dict)
    """Host path -> mount path, read-only (a local initializer source)."""
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
    network: NetworkSpec
    volume: VolumeSpec
    """The job's workspace volume."""
    cache_volumes: list[VolumeSpec] = Field(default_factory=list)
    """Initializer cache volumes, created unless they exist, kept by ``delete_job``."""
    files: dict[str, str]
    """Workspace files (relative path -> content), written before any container starts."""
    containers: list[ContainerSpec]
    """Initializer steps first, then one container per node."""
    engine_requests: list[dict[str, Any]] = Field(default_factory=list)

    def container(self, name: str) -> ContainerSpec:
        """The container called ``name``; KeyError naming the ones there are."""
        for spec in self.containers:
            if spec.name == name:
                return spec
        raise KeyError(f"no container {name!r} in the request; it has {', '.join(c.name for c in self.containers)}")
