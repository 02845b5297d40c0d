"""What a backend can do: the capabilities a backend declares and a request may need.

A leaf module (it imports nothing of the SDK), so that the backend contract, the job plan and the options
can all use it without importing each other. A request that needs a capability the selected backend does
not declare is refused with ``UnsupportedFeatureError`` before anything starts.

The set is open: the built-in capabilities are defined below, and a new option defines the capability it
needs next to itself, in its own module::

    MAX_RESTARTS = Capability("max-restarts", "The MaxRestarts option: failed nodes are restarted.")

    class MaxRestarts(JobOption):
        requires: ClassVar[frozenset[Capability]] = frozenset({MAX_RESTARTS})

so adding an option touches three files: the option, the render of a backend that honours it, and that
backend's capability set (see the README's "Writing a backend").
"""

from __future__ import annotations

import re
from typing import ClassVar

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class Capability(str):
    """One thing a backend can do, named by a lower-case, dash-separated string (``"multi-node"``).

    ``Capability(name)`` returns the defined capability of that name (``ValueError`` if there is none, as an
    ``Enum`` lookup does); ``Capability(name, doc)`` defines a new one, once per process (defining the same
    name again with the same text returns the first; with another text it is an error). Capabilities compare
    equal to their names, so ``Capability.GPU == "gpu"``.
    """

    _defined: ClassVar[dict[str, Capability]] = {}
    _docs: ClassVar[dict[str, str]] = {}

    MULTI_NODE: ClassVar[Capability]
    MULTI_PROCESS: ClassVar[Capability]
    GPU: ClassVar[Capability]
    CPU_LIMIT: ClassVar[Capability]
    MEMORY_LIMIT: ClassVar[Capability]
    IMAGE: ClassVar[Capability]
    CONTAINER_TRAINER: ClassVar[Capability]
    BUILTIN_TRAINER: ClassVar[Capability]
    PACKAGES: ClassVar[Capability]
    INITIALIZERS: ClassVar[Capability]
    LABELS: ClassVar[Capability]
    ANNOTATIONS: ClassVar[Capability]
    ACTIVE_DEADLINE: ClassVar[Capability]
    RUNTIME_PATCH: ClassVar[Capability]
    CALLABLE_OPTIONS: ClassVar[Capability]
    EVENTS: ClassVar[Capability]
    PERSISTENCE: ClassVar[Capability]
    OUTPUTS: ClassVar[Capability]
    OUTPUT_STORAGE: ClassVar[Capability]
    DATA_DIRS: ClassVar[Capability]
    READ_ONLY_DATA_DIRS: ClassVar[Capability]
    WORKSPACE: ClassVar[Capability]

    def __new__(cls, name: str, doc: str | None = None) -> Capability:
        known = cls._defined.get(name)
        if doc is None:
            if known is None:
                raise ValueError(
                    f"{name!r} is not a defined capability (defined: {', '.join(sorted(cls._defined))}); "
                    "define a new one with Capability(name, doc)"
                )
            return known
        if known is not None:
            if cls._docs[name] != doc:
                raise ValueError(f"capability {name!r} is already defined with another description")
            return known
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"capability name {name!r} must be lower-case words joined by '-', e.g. 'max-restarts'")
        capability = super().__new__(cls, name)
        cls._defined[name] = capability
        cls._docs[name] = doc
        return capability

    @property
    def value(self) -> str:
        """The capability's name (as ``Enum.value``)."""
        return str.__str__(self)

    @property
    def name(self) -> str:
        """The attribute-style name, ``"MULTI_NODE"`` for ``"multi-node"`` (as ``Enum.name``)."""
        return self.value.upper().replace("-", "_")

    @property
    def doc(self) -> str:
        """What the capability means."""
        return self._docs[self.value]

    @classmethod
    def defined(cls) -> list[Capability]:
        """Every capability defined in this process, in definition order."""
        return list(cls._defined.values())

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Capability({self.value!r})"

    def __reduce__(self) -> tuple[type[Capability], tuple[str]]:
        return (Capability, (self.value,))


Capability.MULTI_NODE = Capability("multi-node", "``num_nodes`` > 1, with a working torchrun rendezvous across nodes.")
Capability.MULTI_PROCESS = Capability(
    "multi-process", "More than one process per node (``resources_per_node`` cpu or gpu count)."
)
Capability.GPU = Capability(
    "gpu", "GPUs requested with ``resources_per_node['gpu']`` (or MIG/extended resources) are given to the job."
)
Capability.CPU_LIMIT = Capability("cpu-limit", "``resources_per_node['cpu']`` is enforced as a limit.")
Capability.MEMORY_LIMIT = Capability("memory-limit", "``resources_per_node['memory']`` is enforced as a limit.")
Capability.IMAGE = Capability("image", "``CustomTrainer.image`` / runtime images are honoured (container backends).")
Capability.CONTAINER_TRAINER = Capability("container-trainer", "``CustomTrainerContainer`` jobs.")
Capability.BUILTIN_TRAINER = Capability("builtin-trainer", "``BuiltinTrainer`` jobs.")
Capability.PACKAGES = Capability("packages", "``packages_to_install`` / ``pip_index_urls`` are installed for the job.")
Capability.INITIALIZERS = Capability("initializers", "Dataset and model initializers.")
Capability.LABELS = Capability("labels", "The ``Labels`` option.")
Capability.ANNOTATIONS = Capability("annotations", "The ``Annotations`` option.")
Capability.ACTIVE_DEADLINE = Capability("active-deadline", "The ``ActiveDeadlineSeconds`` option.")
Capability.RUNTIME_PATCH = Capability("runtime-patch", "The ``RuntimePatch`` option (Kubernetes JobSet patches).")
Capability.CALLABLE_OPTIONS = Capability(
    "callable-options",
    "Options given as any callable ``option(job_spec, trainer, backend)`` (upstream's protocol): the backend "
    "calls them on its native request (the TrainJob body on Kubernetes).",
)
Capability.EVENTS = Capability(
    "events", "``get_job_events`` returns the job's lifecycle events (without it, it returns an empty list)."
)
Capability.PERSISTENCE = Capability("persistence", "Jobs outlive the client: a new client in a new process sees them.")
Capability.OUTPUTS = Capability(
    "outputs",
    "What a job writes to ``$KUBEFLOW_TRAINER_OUTPUT_DIR`` is kept after it ended (completed or failed) until "
    "``delete_job``, and ``get_job_outputs`` copies it to the caller's machine, from any client.",
)
Capability.OUTPUT_STORAGE = Capability(
    "output-storage",
    "The ``OutputStorage`` option: each node uploads the output directory to an S3-compatible URI when its "
    "function ends (completed or failed), and ``get_job_outputs`` downloads it from there (Kubernetes, where "
    "pods leave nothing behind).",
)
Capability.DATA_DIRS = Capability(
    "data-dirs",
    "The ``DataDirs`` option: a directory of the caller's machine is visible in the job without being copied "
    "(``$KUBEFLOW_TRAINER_DATA_DIR_<NAME>``).",
)
Capability.READ_ONLY_DATA_DIRS = Capability(
    "read-only-data-dirs",
    "Data directories are mounted read-only: the job cannot change the user's data (container backends).",
)
Capability.WORKSPACE = Capability(
    "workspace",
    "``CustomTrainer(workspace=...)``: the project's files are the working directory of every node and importable, "
    "a function from a workspace module runs by reference, and an unchanged workspace is reused (not copied or "
    "uploaded again) where the backend can keep it.",
)
