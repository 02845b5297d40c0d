"""Bad input generated, not only hand-picked (hypothesis): any value given to the public types and options is
either accepted and builds a job plan, or refused with the SDK's documented errors (pydantic's
``ValidationError`` for the types' fields, :class:`InvalidRequestError` and its subclasses for requests) before
anything is created. Never another exception type, and a credential never shows in a ``repr``.

Engine-less and fast; tests/faults/test_generated_input.py runs a sample of the same requests on a real backend.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kubeflow_trainer import (
    ActiveDeadlineSeconds,
    Annotations,
    BuiltinTrainer,
    CustomTrainer,
    CustomTrainerContainer,
    HuggingFaceDatasetInitializer,
    HuggingFaceModelInitializer,
    Initializer,
    InvalidRequestError,
    Labels,
    Name,
    RuntimePatch,
    S3DatasetInitializer,
    S3ModelInitializer,
    TorchTuneConfig,
    TrainerArgs,
    TrainerCommand,
)
from kubeflow_trainer.plan import JobPlan, build_plan
from kubeflow_trainer.runtimes import builtin_runtimes
from kubeflow_trainer.types import UrlDatasetInitializer, UrlModelInitializer

REFUSALS = (ValidationError, InvalidRequestError)
"""What bad input may raise: the types' documented error (pydantic's, itself a ``ValueError``) and the SDK's
typed request errors. Anything else escaping is a bug."""

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def train(lr: float = 0.1, tag: str = "x") -> None:
    print("TRAIN", lr, tag)


def needs_args(a: int, b: int) -> None:
    print(a + b)


# Values of any JSON-ish shape: what a user (or a YAML file, or a notebook widget) may pass anywhere.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True), st.text(max_size=20)
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


def mostly(valid: st.SearchStrategy[Any], near_miss: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Seven draws in eight from ``valid``, else a near miss (a wrong value of the right shape)."""
    return st.one_of(*[valid] * 7, near_miss)


names = mostly(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True), st.text(max_size=70))
env_keys = mostly(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True), st.text(max_size=10))
resources = st.dictionaries(
    mostly(st.sampled_from(["cpu", "memory"]), st.one_of(st.sampled_from(["gpu", "mig-1g.5gb"]), st.text(max_size=8))),
    mostly(
        st.sampled_from([1, 2, "1", "500m", "2Gi", "10G"]),
        st.one_of(st.integers(-4, 64), st.floats(-1, 8), st.just("lots")),
    ),
    max_size=2,
)
maybe = lambda strategy: st.one_of(*[strategy] * 8, st.none(), anything)  # noqa: E731
"""Mostly the field's plausible values (so a fair share of requests is accepted), sometimes None or garbage."""


def kwargs(required: dict[str, Any] | None = None, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A dict of ``required`` (as drawn) and some of ``fields`` (plausible values or garbage), now and then an
    unknown key."""
    base = st.fixed_dictionaries(required or {})
    optional = st.fixed_dictionaries({}, optional={k: maybe(v) for k, v in fields.items()})
    extra = st.one_of(*[st.just({})] * 9, st.builds(lambda v: {"bogus_field": v}, anything))
    return st.builds(lambda a, b, c: {**a, **b, **c}, base, optional, extra)


custom_trainer = kwargs(
    {"func": mostly(st.just(train), st.sampled_from([needs_args, print, "train", lambda: None]))},
    func_args=mostly(
        st.fixed_dictionaries({}, optional={"lr": st.floats(0, 1), "tag": st.text(max_size=5)}),
        st.dictionaries(st.sampled_from(["lr", "a", "nope"]), anything, max_size=2),
    ),
    image=mostly(st.just("python:3.12"), st.text(max_size=15)),
    packages_to_install=st.lists(mostly(st.just("six"), st.text(max_size=6)), max_size=2),
    pip_index_urls=st.lists(mostly(st.just("https://pypi.org/simple"), st.text(max_size=6)), max_size=2),
    num_nodes=mostly(st.integers(1, 4), st.integers(-2, 0)),
    resources_per_node=resources,
    env=st.dictionaries(env_keys, mostly(st.text(max_size=8), st.integers()), max_size=3),
)
container_trainer = kwargs(
    {"image": mostly(st.just("busybox"), st.text(max_size=15))},
    num_nodes=mostly(st.integers(1, 4), st.integers(-2, 0)),
    resources_per_node=resources,
    env=st.dictionaries(env_keys, st.text(max_size=8), max_size=2),
    command=st.lists(st.text(max_size=6), max_size=2),
    args=st.lists(st.text(max_size=6), max_size=2),
)
torchtune = kwargs(
    dtype=st.sampled_from(["bf16", "fp32", "int8"]),
    batch_size=mostly(st.integers(1, 64), st.integers(-1, 0)),
    epochs=mostly(st.integers(1, 5), st.integers(-1, 0)),
    loss=st.sampled_from(["torchtune.modules.loss.CEWithChunkedOutputLoss", "mse"]),
    num_nodes=mostly(st.integers(1, 4), st.integers(-1, 0)),
    resources_per_node=resources,
)
uris = mostly(
    st.sampled_from(["hf://org/repo", "s3://bucket/prefix", "https://h/x.tar", "/abs/path", "file:///x", "hf://"]),
    st.builds(lambda s, t: s + t, st.sampled_from(["hf://", "s3://", "http://", "cache://", ""]), st.text(max_size=12)),
)
secrets = st.sampled_from(["hf_S3CRETTOKEN", "AKIASECRETKEYID", "wJalrSECRETACCESS"])
hf_init = kwargs(
    {"storage_uri": mostly(st.just("hf://org/repo"), uris)},
    revision=st.text(max_size=6),
    cache=names,
    allow_patterns=st.lists(st.text(max_size=5), max_size=2),
    access_token=secrets,
)
s3_init = kwargs(
    {"storage_uri": mostly(st.just("s3://bucket/prefix"), uris)},
    endpoint=st.text(max_size=10),
    access_key_id=secrets,
    secret_access_key=secrets,
    region=st.text(max_size=6),
    cache=names,
)
url_init = kwargs(
    {"storage_uri": mostly(st.just("https://h/x.tar"), uris)},
    sha256=st.one_of(st.text(max_size=64), st.just("a" * 64)),
    unpack=st.booleans(),
)
options = st.lists(
    st.one_of(
        st.builds(lambda v: ("Name", {"name": v}), names),
        st.builds(lambda v: ("Labels", {"labels": v}), st.dictionaries(names, names, max_size=2)),
        st.builds(lambda v: ("Annotations", {"annotations": v}), st.dictionaries(names, anything, max_size=2)),
        st.builds(lambda v: ("TrainerCommand", {"command": v}), st.lists(st.text(max_size=5), max_size=2)),
        st.builds(lambda v: ("TrainerArgs", {"args": v}), st.lists(st.text(max_size=5), max_size=2)),
        st.builds(lambda v: ("ActiveDeadlineSeconds", {"seconds": v}), st.one_of(st.integers(-5, 10**6), anything)),
        st.builds(lambda v: ("RuntimePatch", {"patch": v}), anything),
        st.builds(lambda v: ("Raw", v), anything),  # not an option at all
    ),
    max_size=3,
)
OPTION_TYPES = {
    c.__name__: c for c in (Name, Labels, Annotations, TrainerCommand, TrainerArgs, ActiveDeadlineSeconds, RuntimePatch)
}


def construct(cls: Any, fields: dict[str, Any]) -> Any:
    """Build a public type; only its documented refusal may escape."""
    return cls(**fields)


def make_options(specs: list[tuple[str, Any]]) -> list[Any]:
    out = []
    for kind, fields in specs:
        out.append(fields if kind == "Raw" else construct(OPTION_TYPES[kind], fields))
    return out


requests = st.fixed_dictionaries(
    {
        "trainer": st.one_of(
            st.tuples(st.just(CustomTrainer), custom_trainer),
            st.tuples(st.just(CustomTrainer), custom_trainer),
            st.tuples(st.just(CustomTrainerContainer), container_trainer),
            st.tuples(st.just(TorchTuneConfig), torchtune),
            st.tuples(st.just(None), st.just({})),
        ),
        "dataset": st.one_of(
            st.none(),
            st.tuples(st.just(HuggingFaceDatasetInitializer), hf_init),
            st.tuples(st.just(S3DatasetInitializer), s3_init),
            st.tuples(st.just(UrlDatasetInitializer), url_init),
        ),
        "model": st.one_of(
            st.none(),
            st.tuples(st.just(HuggingFaceModelInitializer), hf_init),
            st.tuples(st.just(S3ModelInitializer), s3_init),
            st.tuples(st.just(UrlModelInitializer), url_init),
        ),
        "options": options,
    }
)


def build_request(spec: dict[str, Any]) -> tuple[Any, Initializer | None, list[Any]]:
    """The user's objects for ``spec`` (each constructor may refuse with ValidationError)."""
    cls, fields = spec["trainer"]
    trainer = None
    if cls is TorchTuneConfig:
        trainer = BuiltinTrainer(config=TorchTuneConfig(**fields))
    elif cls is not None:
        trainer = construct(cls, fields)
    parts = {k: construct(*spec[k]) for k in ("dataset", "model") if spec[k] is not None}
    initializer = Initializer(**parts) if parts else None
    return trainer, initializer, make_options(spec["options"])


def attempt(call: Any) -> tuple[Any, BaseException | None]:
    """``call()``'s result, or the documented refusal it raised; any other exception propagates (a failure)."""
    try:
        return call(), None
    except REFUSALS as exc:
        return None, exc


@PROPERTY
@given(requests)
def test_any_request_builds_a_plan_or_is_refused_with_a_typed_error(spec):
    request, refused = attempt(lambda: build_request(spec))
    if refused is None:
        (runtime,) = builtin_runtimes()
        trainer, initializer, opts = request
        plan, refused = attempt(
            lambda: build_plan(backend="x", runtime=runtime, trainer=trainer, initializer=initializer, options=opts)
        )
    if refused is not None:
        assert str(refused).strip(), "a refusal must say what is wrong"
        event(f"refused: {getattr(refused, 'title', type(refused).__name__)}")
        return
    assert isinstance(plan, JobPlan) and plan.name
    event("accepted")


def printed(cls: Any, fields: dict[str, Any]) -> str:
    """What a user sees of ``cls(**fields)``: the refusal's message, or the object's (and its Initializer's) repr."""
    try:
        obj = cls(**fields)
    except ValidationError as exc:
        return str(exc)
    return repr(obj) + str(obj) + repr(Initializer(model=obj) if "Model" in cls.__name__ else Initializer(dataset=obj))


@PROPERTY
@given(hf_init, s3_init, secrets)
def test_credentials_never_appear_in_a_repr_or_a_refusal(hf, s3, token):
    """Accepted or refused (a missing or bad field elsewhere), the credential is never printed."""
    for cls, fields in (
        (HuggingFaceModelInitializer, {**hf, "access_token": token}),
        (S3DatasetInitializer, {**s3, "access_key_id": token, "secret_access_key": token}),
    ):
        assert token not in printed(cls, fields)


@pytest.mark.parametrize("value", [None, 0, 1.5, "x", [], {}, object(), b"\x00", float("nan")])
def test_every_option_refuses_garbage_only_with_validation_error(value):
    for cls in OPTION_TYPES.values():
        fields = list(cls.model_fields)
        try:
            cls(**{fields[0]: value})
        except ValidationError:
            continue
