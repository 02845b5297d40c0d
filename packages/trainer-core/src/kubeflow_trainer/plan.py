"""The backend-neutral job plan: what ``train()`` asks for, validated, before any backend renders it.

:func:`build_plan` turns the user's request (runtime, trainer, initializer, options) into a
:class:`JobPlan`: name, runtime, steps, node count, processes per node, resources, image, environment,
labels, the files to ship and the node entrypoint. Each backend translates a plan into its native request
in one place (its ``render`` method). :meth:`JobPlan.required_capabilities` says which backend
capabilities the plan needs; the client refuses a plan whose backend lacks one.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from kubeflow_trainer import shipping
from kubeflow_trainer.capabilities import Capability
from kubeflow_trainer.errors import InvalidRequestError
from kubeflow_trainer.rendezvous import Rendezvous
from kubeflow_trainer.resources import Resources, parse_resources
from kubeflow_trainer.types import (
    BuiltinTrainer,
    CustomTrainer,
    CustomTrainerContainer,
    Initializer,
    Runtime,
)

if TYPE_CHECKING:
    from kubeflow_trainer.initializers import InitializerStep
    from kubeflow_trainer.options import JobOption
    from kubeflow_trainer.workspace import WorkspaceSnapshot

OptionT = TypeVar("OptionT", bound="JobOption")
TrainerKind = Literal["custom", "container", "builtin", "runtime"]
StepKind = Literal["trainer", "dataset-initializer", "model-initializer"]

DATASET_INITIALIZER = "dataset-initializer"
MODEL_INITIALIZER = "model-initializer"


def node_step(rank: int) -> str:
    """The step name of trainer node ``rank``: ``node-<rank>``."""
    return f"node-{rank}"


def random_job_name() -> str:
    """Upstream-style name: one letter then 11 hex digits (a valid DNS-1123 label)."""
    return secrets.choice(string.ascii_lowercase) + secrets.token_hex(6)[:11]


@dataclass
class StepPlan:
    """One step of the job."""

    name: str
    kind: StepKind
    rank: int | None = None


class _PlanFields:
    """What :class:`PlanDraft` and :class:`JobPlan` share: the derived views and the capability check."""

    name: str
    backend: str
    runtime: Runtime
    trainer: CustomTrainer | CustomTrainerContainer | BuiltinTrainer | None
    trainer_kind: TrainerKind
    max_restarts: int
    num_nodes: int
    procs_per_node: int
    resources: Resources
    image: str | None
    trainer_image: str | None
    env: Mapping[str, str]
    script: str | None
    packages_to_install: Sequence[str]
    initializer: Initializer | None
    steps: Sequence[StepPlan]
    options: Sequence[Any]
    data_dirs: Mapping[str, str]
    output_storage: Any
    workspace: WorkspaceSnapshot | None

    # ------------------------------------------------------------------------------------------------
    @property
    def framework(self) -> str:
        """The runtime's framework label (``torch``...)."""
        return self.runtime.trainer.framework

    @property
    def uses_torchrun(self) -> bool:
        """True when nodes run ``torchrun`` (CustomTrainer on a torch runtime)."""
        return self.trainer_kind == "custom" and self.framework == "torch"

    def node_steps(self) -> list[StepPlan]:
        """The trainer node steps, in rank order."""
        return [s for s in self.steps if s.kind == "trainer"]

    def rendezvous(self, node_rank: int, master_addr: str, master_port: int) -> Rendezvous:
        """The torchrun rendezvous for node ``node_rank`` given how the backend addresses node 0."""
        return Rendezvous(
            num_nodes=self.num_nodes,
            procs_per_node=self.procs_per_node,
            node_rank=node_rank,
            master_addr=master_addr,
            master_port=master_port,
            max_restarts=self.max_restarts,
        )

    def node_command(
        self,
        node_rank: int,
        master_addr: str,
        master_port: int,
        workspace: str,
        torchrun: str = "torchrun",
        python: str = "python",
    ) -> list[str]:
        """Argv of the trainer on node ``node_rank`` with the script under ``workspace``.

        CustomTrainer on torch: torchrun with explicit rendezvous flags; on another framework: ``python``.
        """
        if self.script is None:
            raise InvalidRequestError("this job has no script to run (not a CustomTrainer)")
        script = f"{workspace.rstrip('/')}/{self.script}"
        if self.framework == "torch":
            return self.rendezvous(node_rank, master_addr, master_port).torchrun_args(script, torchrun)
        return [python, script]

    def node_env(self, node_rank: int, master_addr: str, master_port: int) -> dict[str, str]:
        """Environment for node ``node_rank``: the user's ``env`` plus the rendezvous variables."""
        env = dict(self.env)
        if self.framework == "torch":
            env.update(self.rendezvous(node_rank, master_addr, master_port).env())
        env["KUBEFLOW_TRAINER_JOB_NAME"] = self.name
        env["KUBEFLOW_TRAINER_NODE_RANK"] = str(node_rank)
        return env

    def required_capabilities(self) -> set[Capability]:
        """The backend capabilities this plan needs."""
        need: set[Capability] = set()
        if self.num_nodes > 1:
            need.add(Capability.MULTI_NODE)
        if self.procs_per_node > 1:
            need.add(Capability.MULTI_PROCESS)
        res = self.resources
        if res.gpu or res.extended:
            need.add(Capability.GPU)
        if res.cpu is not None:
            need.add(Capability.CPU_LIMIT)
        if res.memory is not None:
            need.add(Capability.MEMORY_LIMIT)
        if self.trainer_kind == "container":
            need.add(Capability.CONTAINER_TRAINER)
        if self.trainer_kind == "builtin":
            need.add(Capability.BUILTIN_TRAINER)
        if self.trainer_image and self.trainer_kind == "custom":  # a container trainer's image is its point
            need.add(Capability.IMAGE)
        if self.packages_to_install:
            need.add(Capability.PACKAGES)
        if self.initializer is not None and (self.initializer.dataset or self.initializer.model):
            need.add(Capability.INITIALIZERS)
        for option in self.options:
            need.update(getattr(option, "requires", ()))
        if self.callable_options:
            need.add(Capability.CALLABLE_OPTIONS)
        if self.data_dirs:
            need.add(Capability.DATA_DIRS)
        if self.workspace is not None:
            need.add(Capability.WORKSPACE)
        return need

    @property
    def callable_options(self) -> list[Callable[..., Any]]:
        """Options given as plain callables ``option(job_spec, trainer, backend)`` (upstream's protocol),
        in the order given; the backend applies them to its native request."""
        from kubeflow_trainer.options import JobOption

        return [o for o in self.options if not isinstance(o, JobOption)]

    def require_container_trainer(self, option: str) -> None:
        """Raise unless the trainer is a CustomTrainerContainer (for container-only options)."""
        if self.trainer_kind != "container":
            raise InvalidRequestError(f"the {option} option only applies to CustomTrainerContainer trainers")


@dataclass
class PlanDraft(_PlanFields):
    """The plan while it is being built: options (:meth:`JobOption.apply`) and the
    ``trainer_adjust_job_plan`` hook edit it in place; :meth:`freeze` makes the :class:`JobPlan`."""

    name: str
    backend: str
    runtime: Runtime
    trainer: CustomTrainer | CustomTrainerContainer | BuiltinTrainer | None
    trainer_kind: TrainerKind
    num_nodes: int
    procs_per_node: int
    resources: Resources
    image: str | None
    trainer_image: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    script: str | None = None
    packages_to_install: list[str] = field(default_factory=list)
    pip_index_urls: list[str] | None = None
    initializer: Initializer | None = None
    container_command: list[str] | None = None
    container_args: list[str] | None = None
    active_deadline_seconds: int | None = None
    max_restarts: int = 0
    runtime_patches: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepPlan] = field(default_factory=list)
    options: list[Any] = field(default_factory=list)
    name_given: bool = False
    data_dirs: dict[str, str] = field(default_factory=dict)
    output_storage: Any = None
    workspace: WorkspaceSnapshot | None = None

    def freeze(self) -> JobPlan:
        """The frozen plan backends receive. Fields are copied (lists become tuples, dicts new dicts), so later
        edits of the draft do not reach it."""

        def frozen(value: Any) -> Any:
            if isinstance(value, list):
                return tuple(value)
            if isinstance(value, dict):
                return dict(value)
            return value

        return JobPlan(**{f.name: frozen(getattr(self, f.name)) for f in fields(self)})


@dataclass(frozen=True)
class JobPlan(_PlanFields):
    """A validated, fully resolved, backend-neutral description of one job. Frozen: backends read it, never
    change it, and never need the user's original objects (``trainer`` is kept only to hand it to callable
    options, upstream's ``option(job_spec, trainer, backend)`` protocol).

    Mapping fields are typed read-only; a backend that needs a changed copy makes one (``dict(plan.env)``).
    """

    name: str
    backend: str
    runtime: Runtime
    trainer: CustomTrainer | CustomTrainerContainer | BuiltinTrainer | None
    trainer_kind: TrainerKind
    num_nodes: int
    procs_per_node: int
    resources: Resources
    image: str | None
    """The image the job asks for: the trainer's, else the runtime's (None when neither names one)."""
    trainer_image: str | None = None
    """The image the trainer itself names (wins over a backend's configured default; the runtime's loses)."""
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    """Files to place in the job's workspace (relative path -> content), e.g. ``train.py``."""
    script: str | None = None
    """Workspace-relative path of the Python entry script (CustomTrainer), run by torchrun on every node."""
    packages_to_install: tuple[str, ...] = ()
    pip_index_urls: tuple[str, ...] | None = None
    initializer: Initializer | None = None
    """The user's initializer, for the Kubernetes data cache only; everything else reads
    :attr:`initializer_steps`."""
    container_command: tuple[str, ...] | None = None
    container_args: tuple[str, ...] | None = None
    active_deadline_seconds: int | None = None
    max_restarts: int = 0
    """How often torchrun restarts a node's workers after a failure (``MaxRestarts``); 0: a failure is final."""
    runtime_patches: tuple[dict[str, Any], ...] = ()
    steps: tuple[StepPlan, ...] = ()
    options: tuple[Any, ...] = ()
    name_given: bool = False
    """True when the user named the job (``Name``); otherwise the name is random."""
    data_dirs: Mapping[str, str] = field(default_factory=dict)
    """Data directories of the caller's machine (name -> absolute path of an existing directory) the job reads
    without copying (``DataDirs``); named in the job by ``$KUBEFLOW_TRAINER_DATA_DIR_<NAME>``."""
    output_storage: Any = None
    """Where the nodes upload their output directory (an ``OutputStorage`` option), or None."""
    workspace: WorkspaceSnapshot | None = None
    """The project files that ship (``CustomTrainer(workspace=...)``): the job's working directory on every
    node. The SDK's own files (:attr:`files`) are then under ``.kft/``."""

    @cached_property
    def initializer_steps(self) -> tuple[InitializerStep, ...]:
        """The dataset/model initializer steps, resolved once: source, secrets (never printed), requirements,
        cache key. Raises InvalidRequestError for an initializer only Kubernetes can run (the data cache)."""
        from kubeflow_trainer.initializers import plan_initializers

        return tuple(plan_initializers(self.initializer))

    def option(self, kind: type[OptionT]) -> OptionT | None:
        """The option of type ``kind`` given with the job, or None (each option type is given at most once)."""
        for option in self.options:
            if isinstance(option, kind):
                return option
        return None


def build_plan(
    *,
    backend: str,
    runtime: Runtime,
    trainer: CustomTrainer | CustomTrainerContainer | BuiltinTrainer | None,
    initializer: Initializer | None,
    options: list[Any] | None,
) -> JobPlan:
    """Validate a request and build its frozen plan. Raises InvalidRequestError naming what is wrong."""
    return build_draft(
        backend=backend, runtime=runtime, trainer=trainer, initializer=initializer, options=options
    ).freeze()


def _option_names() -> str:
    from kubeflow_trainer.options import JobOption

    found: list[str] = []
    todo = list(JobOption.__subclasses__())
    while todo:
        cls = todo.pop(0)
        todo.extend(cls.__subclasses__())
        if not cls.__name__.startswith("_") and "apply" in cls.__dict__:
            found.append(cls.__name__)
    return ", ".join(sorted(set(found)))


def build_draft(
    *,
    backend: str,
    runtime: Runtime,
    trainer: CustomTrainer | CustomTrainerContainer | BuiltinTrainer | None,
    initializer: Initializer | None,
    options: list[Any] | None,
) -> PlanDraft:
    """Validate a request and build the editable draft of its plan (options applied)."""
    from kubeflow_trainer.options import JobOption

    if trainer is not None and not isinstance(trainer, (CustomTrainer, CustomTrainerContainer, BuiltinTrainer)):
        raise InvalidRequestError(
            f"trainer must be a CustomTrainer, CustomTrainerContainer or BuiltinTrainer; got {type(trainer).__name__}"
        )
    if initializer is not None and not isinstance(initializer, Initializer):
        raise InvalidRequestError(f"initializer must be an Initializer; got {type(initializer).__name__}")
    if options is not None and not isinstance(options, (list, tuple)):
        raise InvalidRequestError("options must be a list of option objects such as [Name('my-job')]")
    for option in options or ():
        if not isinstance(option, JobOption) and (isinstance(option, type) or not callable(option)):
            raise InvalidRequestError(
                f"unknown option {option!r}: options are objects from kubeflow_trainer.options "
                f"({_option_names()}) or callables option(job_spec, trainer, backend) (an instance, not a class)"
            )
    kinds = [type(o).__name__ for o in options or () if isinstance(o, JobOption)]
    dupes = sorted({k for k in kinds if kinds.count(k) > 1})
    if dupes:
        raise InvalidRequestError(f"option(s) given more than once: {', '.join(dupes)}")

    trainer_kind: TrainerKind
    if isinstance(trainer, CustomTrainer):
        trainer_kind = "custom"
    elif isinstance(trainer, CustomTrainerContainer):
        trainer_kind = "container"
    elif isinstance(trainer, BuiltinTrainer):
        trainer_kind = "builtin"
    else:
        trainer_kind = "runtime"

    from kubeflow_trainer.types import TrainerType

    if trainer_kind == "builtin" and runtime.trainer.trainer_type != TrainerType.BUILTIN_TRAINER:
        raise InvalidRequestError(
            f"BuiltinTrainer needs a builtin runtime (framework torchtune); runtime {runtime.name!r} "
            f"is a {runtime.trainer.framework} runtime for CustomTrainer"
        )
    if trainer_kind == "custom" and runtime.trainer.trainer_type != TrainerType.CUSTOM_TRAINER:
        raise InvalidRequestError(
            f"CustomTrainer needs a custom-trainer runtime such as 'torch-distributed'; runtime "
            f"{runtime.name!r} is a builtin runtime"
        )

    raw_resources: dict[str, Any] | None = None
    num_nodes: int | None = None
    if isinstance(trainer, (CustomTrainer, CustomTrainerContainer)):
        raw_resources = trainer.resources_per_node
        num_nodes = trainer.num_nodes
    elif isinstance(trainer, BuiltinTrainer):
        raw_resources = trainer.config.resources_per_node
        num_nodes = trainer.config.num_nodes
    try:
        resources = parse_resources(raw_resources)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    num_nodes = num_nodes or runtime.trainer.num_nodes or 1
    if num_nodes < 1:
        raise InvalidRequestError(f"num_nodes must be at least 1; got {num_nodes}")

    trainer_image = trainer.image if isinstance(trainer, (CustomTrainer, CustomTrainerContainer)) else None
    image = trainer_image or runtime.trainer.image or None

    plan = PlanDraft(
        name=random_job_name(),
        backend=backend,
        runtime=runtime,
        trainer=trainer,
        trainer_kind=trainer_kind,
        num_nodes=num_nodes,
        procs_per_node=resources.processes_per_node(),
        resources=resources,
        image=image,
        trainer_image=trainer_image or None,
        initializer=initializer,
        options=list(options or ()),
    )
    if isinstance(trainer, (CustomTrainer, CustomTrainerContainer)) and trainer.env:
        plan.env.update(trainer.env)
    if isinstance(trainer, CustomTrainer):
        plan.packages_to_install = list(trainer.packages_to_install or [])
        plan.pip_index_urls = list(trainer.pip_index_urls) if trainer.pip_index_urls else None
        if trainer.workspace is not None:
            from kubeflow_trainer.workspace import SDK_DIR, take_snapshot

            plan.workspace = take_snapshot(trainer.workspace)
            plan.script = f"{SDK_DIR}/{shipping.SCRIPT_NAME}"
        else:
            plan.script = shipping.SCRIPT_NAME
        plan.files[plan.script] = shipping.build_script(trainer.func, trainer.func_args, plan.workspace)
    if isinstance(trainer, CustomTrainerContainer):
        plan.container_command = list(trainer.command) if trainer.command else None
        plan.container_args = list(trainer.args) if trainer.args else None

    from kubeflow_trainer.options import Name

    for option in options or ():
        if not isinstance(option, JobOption):
            continue  # a callable option: applied by the backend to its native request
        option.apply(plan)
        if isinstance(option, Name):
            plan.name_given = True

    if initializer is not None and initializer.dataset is not None:
        plan.steps.append(StepPlan(DATASET_INITIALIZER, "dataset-initializer"))
    if initializer is not None and initializer.model is not None:
        plan.steps.append(StepPlan(MODEL_INITIALIZER, "model-initializer"))
    plan.steps.extend(StepPlan(node_step(rank), "trainer", rank) for rank in range(num_nodes))
    return plan
