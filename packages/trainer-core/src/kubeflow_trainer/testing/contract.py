"""The contract half of the conformance kit: checks that need no running engine or cluster (seconds).

It drives the backend only through what must work offline: discovery, validation, capability refusal and
``dry_run`` (``render`` is pure by contract). A plugin author runs it first, on a laptop with no engine,
and gets feedback on the contract's shape in seconds; :class:`~kubeflow_trainer.testing.BackendConformance`
adds the checks that run real jobs.

Usage::

    from kubeflow_trainer.testing import BackendContract

    class TestMyBackendContract(BackendContract):
        backend = "my-backend"

        @pytest.fixture
        def backend_config(self):
            return MyBackendConfig(host="unix:///nonexistent")   # no engine needed

Declared deviations (``xfail = {"test_x": "why"}``) and the ban on redefining kit tests work as in
:class:`~kubeflow_trainer.testing.BackendConformance`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from kubeflow_trainer import (
    Capability,
    CustomTrainer,
    CustomTrainerContainer,
    Initializer,
    InvalidRequestError,
    Name,
    Runtime,
    S3DatasetInitializer,
    TrainerClient,
    UnsupportedFeatureError,
    available_backends,
)
from kubeflow_trainer.backend import BackendConfig
from kubeflow_trainer.errors import FreeNameError
from kubeflow_trainer.options import JobOption
from kubeflow_trainer.runtimes import builtin_runtimes
from kubeflow_trainer.testing import jobs

KIT_SECRET_KEY = "AKIAKFTKITSECRET0001"
KIT_SECRET_VALUE = "kft-kit-secret-value-do-not-print"


def kit_tests(cls: type) -> set[str]:
    """Names of the kit tests ``cls`` inherits from the kit classes in its MRO."""
    return {
        name
        for base in cls.__mro__
        if base.__dict__.get("_kit_class")
        for name in base.__dict__
        if name.startswith("test_")
    }


def _option_classes() -> list[type[JobOption]]:
    """Every imported JobOption subclass, depth first, each once."""
    found: list[type[JobOption]] = []
    pending = list(JobOption.__subclasses__())
    while pending:
        cls = pending.pop(0)
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return found


def _kit_base(cls: type, name: str) -> Callable[..., Any]:
    for base in cls.__mro__[1:]:
        if base.__dict__.get("_kit_class") and name in base.__dict__:
            return base.__dict__[name]  # type: ignore[no-any-return]
    raise AttributeError(name)


class BackendContract:
    """Contract checks that need no running engine. Subclass it, set :attr:`backend`, override fixtures."""

    _kit_class: ClassVar[bool] = True
    backend: ClassVar[str] = ""
    """The backend name as registered."""
    xfail: ClassVar[dict[str, str]] = {}
    """Kit tests this backend is expected to fail, with the reason (run as strict xfail)."""
    trainer_defaults: ClassVar[dict[str, Any]] = {}
    """Fields merged into every CustomTrainer the kit builds (e.g. ``image``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_kit_class"):
            return
        names = kit_tests(cls)
        overridden = sorted(n for n in names if n in cls.__dict__)
        if overridden:
            raise TypeError(
                f"{cls.__name__} redefines conformance test(s) {overridden}. Declare them in "
                "`xfail = {'test_name': 'reason'}` instead, so that the deviation is visible in every run."
            )
        for name, reason in cls.__dict__.get("xfail", {}).items():
            if name not in names:
                raise TypeError(f"{cls.__name__}.xfail names {name!r}, which is not a conformance test")
            if not isinstance(reason, str) or not reason.strip():
                raise TypeError(f"{cls.__name__}.xfail[{name!r}] needs a reason")
            base = _kit_base(cls, name)

            @functools.wraps(base)
            def wrapper(self: Any, *args: Any, _base: Callable[..., Any] = base, **kw: Any) -> Any:
                return _base(self, *args, **kw)

            setattr(cls, name, pytest.mark.xfail(reason=f"declared by {cls.__name__}: {reason}", strict=True)(wrapper))

    # Fixtures a subclass may override ------------------------------------------------------------------
    @pytest.fixture
    def backend_config(self) -> BackendConfig | None:
        """The backend config to use; None means the backend's default config."""
        return None

    @pytest.fixture
    def client(self, backend_config: BackendConfig | None) -> Iterator[TrainerClient]:
        """A client on the backend under test."""
        if not self.backend:
            raise TypeError(f"{type(self).__name__} must set the class attribute `backend`")
        client = (
            TrainerClient(backend_config=backend_config)
            if backend_config is not None
            else TrainerClient(backend=self.backend)
        )
        yield client
        client.close()

    @pytest.fixture
    def runtime(self) -> Runtime:
        """The runtime the contract checks pass explicitly (so that no runtime lookup reaches an engine):
        the built-in ``torch-distributed``."""
        return next(r for r in builtin_runtimes() if r.name == "torch-distributed")

    # Helpers ---------------------------------------------------------------------------------------------
    def trainer(self, func: Callable[..., Any], **fields: Any) -> CustomTrainer:
        """A CustomTrainer for ``func`` with :attr:`trainer_defaults` applied."""
        merged = {**self.trainer_defaults, **fields}
        return CustomTrainer(func=func, **merged)

    def capability_requests(self) -> dict[str, tuple[set[Capability], dict[str, Any]]]:
        """One request per capability the kit checks: label -> (capabilities it needs, ``train`` keywords).

        Besides the trainer features listed here, every imported :class:`~kubeflow_trainer.options.JobOption`
        subclass that requires a capability contributes its :meth:`~kubeflow_trainer.options.JobOption.example`,
        so a new option is checked with no change to the kit."""
        echo = {"func_args": {"message": "cap"}}
        requests: dict[str, tuple[set[Capability], dict[str, Any]]] = {
            "multi-node": ({Capability.MULTI_NODE}, {"trainer": self.trainer(jobs.echo_job, num_nodes=2, **echo)}),
            "gpu": ({Capability.GPU}, {"trainer": self.trainer(jobs.echo_job, resources_per_node={"gpu": 1}, **echo)}),
            "cpu": (
                {Capability.CPU_LIMIT},
                {"trainer": self.trainer(jobs.echo_job, resources_per_node={"cpu": 1}, **echo)},
            ),
            "cpu x2": (
                {Capability.CPU_LIMIT, Capability.MULTI_PROCESS},
                {"trainer": self.trainer(jobs.echo_job, resources_per_node={"cpu": 2}, **echo)},
            ),
            "memory": (
                {Capability.MEMORY_LIMIT},
                {"trainer": self.trainer(jobs.echo_job, resources_per_node={"memory": "1Gi"}, **echo)},
            ),
            "image": (
                {Capability.IMAGE},
                {"trainer": self.trainer(jobs.echo_job, **{**echo, "image": "registry.invalid/kft/x:1"})},
            ),
            "container trainer": (
                {Capability.CONTAINER_TRAINER},
                {"trainer": CustomTrainerContainer(image="registry.invalid/kft/x:1")},
            ),
            "packages": (
                {Capability.PACKAGES},
                {"trainer": self.trainer(jobs.echo_job, packages_to_install=["six"], **echo)},
            ),
            "initializers": (
                {Capability.INITIALIZERS},
                {
                    "trainer": self.trainer(jobs.echo_job, **echo),
                    "initializer": Initializer(dataset=S3DatasetInitializer(storage_uri="s3://bucket/data")),
                },
            ),
            "callable option": (
                {Capability.CALLABLE_OPTIONS},
                {"trainer": self.trainer(jobs.echo_job, **echo), "options": [lambda job_spec, trainer, backend: None]},
            ),
            "workspace": (
                {Capability.WORKSPACE},
                {"trainer": self.trainer(jobs.echo_job, workspace=os.path.dirname(jobs.__file__), **echo)},
            ),
        }
        for option_class in _option_classes():
            example = option_class.example()
            if option_class.requires and example is not None:
                requests[f"option {option_class.__name__}"] = (
                    set(option_class.requires),
                    {"trainer": self.trainer(jobs.echo_job, **echo), "options": [example]},
                )
        return requests

    # The contract ----------------------------------------------------------------------------------------
    def test_contract_backend_is_discoverable(self, client: TrainerClient) -> None:
        """The backend is listed by discovery and selected by name."""
        assert self.backend in available_backends()
        assert client.backend_name == self.backend

    def test_contract_doctor_reports_checks_with_fixes(self, backend_config: BackendConfig | None) -> None:
        """``kubeflow-trainer doctor``: the backend's checks (its ``trainer_doctor_checks`` hook, plus core's)
        come back as :class:`~kubeflow_trainer.doctor.Check` objects, never as an exception, and every failing
        one says how to fix it (here the engine may be down: failing is allowed, failing silently is not)."""
        from kubeflow_trainer.doctor import Check, run_checks

        checks = run_checks(self.backend, backend_config)
        assert checks and all(isinstance(c, Check) for c in checks), checks
        assert checks[0].name == f"backend '{self.backend}' installed" and checks[0].ok, checks[0]
        for check in checks:
            assert check.status in ("ok", "warn", "fail"), check
            assert check.ok or check.fix.strip(), f"failing check without a fix: {check}"

    def test_contract_dry_run_is_the_declared_request(self, client: TrainerClient, runtime: Runtime) -> None:
        """``dry_run(...).request`` is an instance of the backend's declared ``request_model`` (the object
        ``train`` submits), serialisable, and carries the plan's name."""
        model = client.backend.request_model
        assert model is not None, (
            f"{type(client.backend).__name__} declares no request_model: render(plan) must return a pydantic "
            "model and submit(request) execute it (kubeflow_trainer.backend.Backend)"
        )
        result = client.dry_run(
            runtime=runtime,
            trainer=self.trainer(jobs.echo_job, func_args={"message": "x"}),
            options=[Name(name="kft-contract-dry")],
        )
        assert result.backend == self.backend
        assert result.plan.name == "kft-contract-dry"
        assert isinstance(result.request, model)
        assert "kft-contract-dry" in result.request.model_dump_json()

    def test_contract_secrets_never_print(self, client: TrainerClient, runtime: Runtime) -> None:
        """Initializer credentials do not appear in a dry run's request, its repr or its serialisation (or the
        backend refuses initializers)."""
        init = Initializer(
            dataset=S3DatasetInitializer(
                storage_uri="s3://kft-kit/data",
                endpoint="http://127.0.0.1:9",
                access_key_id=KIT_SECRET_KEY,
                secret_access_key=KIT_SECRET_VALUE,
            )
        )
        trainer = self.trainer(jobs.echo_job, func_args={"message": "x"})
        if Capability.INITIALIZERS not in client.capabilities:
            with pytest.raises(UnsupportedFeatureError, match="initializers"):
                client.dry_run(runtime=runtime, initializer=init, trainer=trainer)
            return
        result = client.dry_run(runtime=runtime, initializer=init, trainer=trainer)
        for text in (repr(result), repr(result.request), str(result.request), result.request.model_dump_json()):
            assert KIT_SECRET_KEY not in text and KIT_SECRET_VALUE not in text, text[:2000]

    def test_contract_undeclared_capabilities_are_refused(self, client: TrainerClient, runtime: Runtime) -> None:
        """A request needing a capability the backend does not declare is refused with UnsupportedFeatureError
        naming it; a request within the declared capabilities renders."""
        declared = set(client.capabilities)
        requests = self.capability_requests()
        for label, (base_needs, kwargs) in requests.items():
            needs = set(base_needs)
            if "image" in self.trainer_defaults and isinstance(kwargs["trainer"], CustomTrainer):
                needs.add(Capability.IMAGE)
            if needs <= declared:
                assert client.dry_run(runtime=runtime, **kwargs).request is not None, label
                continue
            with pytest.raises(UnsupportedFeatureError) as info:
                client.dry_run(runtime=runtime, **kwargs)
            assert set(info.value.missing) == {str(c) for c in needs - declared}, label
            assert info.value.backend == self.backend

    def test_contract_bad_requests_are_refused(self, client: TrainerClient, runtime: Runtime) -> None:
        """Invalid input fails with a typed error naming the problem, before the backend is involved."""
        with pytest.raises(ValueError, match="num_nodes"):
            self.trainer(jobs.echo_job, func_args={"message": "x"}, num_nodes=0)
        with pytest.raises(ValueError, match="DNS-1123"):
            Name(name="Not_A_Valid_Name")
        with pytest.raises(ValueError, match="lambda"):
            CustomTrainer(func=lambda: None)
        with pytest.raises(ValueError, match="func_args"):
            self.trainer(jobs.echo_job, func_args={"message": object()})
        with pytest.raises(InvalidRequestError, match="option"):
            client.dry_run(
                runtime=runtime,
                trainer=self.trainer(jobs.echo_job, func_args={"message": "x"}),
                options=["not-an-option"],
            )
        with pytest.raises(InvalidRequestError, match="trainer"):
            client.dry_run(runtime=runtime, trainer="not a trainer")  # type: ignore[arg-type]

    def test_contract_free_names_are_refused(self, client: TrainerClient, runtime: Runtime) -> None:
        """A notebook function using a global the job would not have is refused by ``train`` before the
        backend is involved (FreeNameError, an InvalidRequestError naming it); constants it uses ship."""
        import linecache

        source = "def cell_train():\n    print(SCALE * UNDEFINED_IN_THE_NOTEBOOK)\n"
        cell = "<ipython-input-kft-kit>"
        linecache.cache[cell] = (len(source), None, source.splitlines(True), cell)  # as IPython registers cells
        namespace: dict[str, Any] = {"__name__": "__main__", "SCALE": 3}
        exec(compile(source, cell, "exec"), namespace)
        trainer = self.trainer(namespace["cell_train"])
        with pytest.raises(FreeNameError, match="UNDEFINED_IN_THE_NOTEBOOK") as info:
            client.train(runtime=runtime, trainer=trainer)
        assert info.value.names == ("UNDEFINED_IN_THE_NOTEBOOK",) and isinstance(info.value, InvalidRequestError)

    def test_contract_wait_rejects_bad_arguments(self, client: TrainerClient) -> None:
        """Bad wait arguments raise InvalidRequestError before polling."""
        bad: list[dict[str, Any]] = [{"status": {"Done"}}, {"timeout": 0}, {"polling_interval": -1}, {"status": set()}]
        for kwargs in bad:
            with pytest.raises(InvalidRequestError):
                client.wait_for_job_status("whatever", **kwargs)
