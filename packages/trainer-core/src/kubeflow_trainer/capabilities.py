"""What a backend can do: the capabilities a backend declares and a request may need.

A leaf module (it imports nothing of the SDK), so that the backend contract, the job plan and the options
can all use it without importing each other. A request that needs a capability the selected backend does
not declare is refused with ``UnsupportedFeatureError`` before anything starts.
"""

from __future__ import annotations

from enum import Enum


class Capability(str, Enum):
    """What a backend can do. A request needing an undeclared capability is refused before it starts."""

    MULTI_NODE = "multi-node"
    """``num_nodes`` > 1, with a working torchrun rendezvous across nodes."""
    MULTI_PROCESS = "multi-process"
    """More than one process per node (``resources_per_node`` cpu or gpu count)."""
    GPU = "gpu"
    """GPUs requested with ``resources_per_node['gpu']`` (or MIG/extended resources) are given to the job."""
    CPU_LIMIT = "cpu-limit"
    """``resources_per_node['cpu']`` is enforced as a limit."""
    MEMORY_LIMIT = "memory-limit"
    """``resources_per_node['memory']`` is enforced as a limit."""
    IMAGE = "image"
    """``CustomTrainer.image`` / runtime images are honoured (container backends)."""
    CONTAINER_TRAINER = "container-trainer"
    """``CustomTrainerContainer`` jobs."""
    BUILTIN_TRAINER = "builtin-trainer"
    """``BuiltinTrainer`` jobs."""
    PACKAGES = "packages"
    """``packages_to_install`` / ``pip_index_urls`` are installed for the job."""
    INITIALIZERS = "initializers"
    """Dataset and model initializers."""
    LABELS = "labels"
    """The ``Labels`` option."""
    ANNOTATIONS = "annotations"
    """The ``Annotations`` option."""
    ACTIVE_DEADLINE = "active-deadline"
    """The ``ActiveDeadlineSeconds`` option."""
    RUNTIME_PATCH = "runtime-patch"
    """The ``RuntimePatch`` option (Kubernetes JobSet patches)."""
    CALLABLE_OPTIONS = "callable-options"
    """Options given as any callable ``option(job_spec, trainer, backend)`` (upstream's protocol): the backend
    calls them on its native request (the TrainJob body on Kubernetes)."""
    EVENTS = "events"
    """``get_job_events`` returns the job's lifecycle events (without it, it returns an empty list)."""
    PERSISTENCE = "persistence"
    """Jobs outlive the client: a new client in a new process sees them."""

    def __str__(self) -> str:
        return self.value
