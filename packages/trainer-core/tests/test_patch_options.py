"""Upstream's runtime patch types and callable options: shapes, validation, plan and capability handling.

The bodies are also compared with upstream 0.5.0's own rendering in
packages/trainer-backend-k8s/tests/test_upstream_bodies.py; here is the fast check of our own logic.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kubeflow_trainer import CustomTrainer, InvalidRequestError, Name
from kubeflow_trainer.capabilities import Capability
from kubeflow_trainer.options import (
    ContainerPatch,
    JobSetSpecPatch,
    JobSetTemplatePatch,
    JobSpecPatch,
    JobTemplatePatch,
    PodSpecPatch,
    PodTemplatePatch,
    ReplicatedJobPatch,
    RuntimePatch,
    TrainingRuntimeSpecPatch,
)
from kubeflow_trainer.plan import build_plan
from kubeflow_trainer.runtimes import builtin_runtimes


def train() -> None:
    print("hi")


def full_patch() -> RuntimePatch:
    return RuntimePatch(
        training_runtime_spec=TrainingRuntimeSpecPatch(
            template=JobSetTemplatePatch(
                metadata={"labels": {"team": "ml"}},
                spec=JobSetSpecPatch(
                    replicated_jobs=[
                        ReplicatedJobPatch(
                            name="node",
                            template=JobTemplatePatch(
                                metadata={"annotations": {"a": "b"}},
                                spec=JobSpecPatch(
                                    template=PodTemplatePatch(
                                        spec=PodSpecPatch(
                                            service_account_name="trainer",
                                            node_selector={"pool": "gpu"},
                                            tolerations=[{"key": "gpu", "operator": "Exists"}],
                                            volumes=[],
                                            containers=[
                                                ContainerPatch(
                                                    name="node",
                                                    env=[{"name": "A", "value": "1"}],
                                                    volume_mounts=[{"name": "data", "mountPath": "/data"}],
                                                )
                                            ],
                                        )
                                    )
                                ),
                            ),
                        )
                    ]
                ),
            )
        )
    )


def test_nested_patch_renders_camel_case_without_unset_or_empty_values():
    assert full_patch().to_dict() == {
        "trainingRuntimeSpec": {
            "template": {
                "metadata": {"labels": {"team": "ml"}},
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": "node",
                            "template": {
                                "metadata": {"annotations": {"a": "b"}},
                                "spec": {
                                    "template": {
                                        "spec": {
                                            "serviceAccountName": "trainer",
                                            "containers": [
                                                {
                                                    "name": "node",
                                                    "env": [{"name": "A", "value": "1"}],
                                                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                                }
                                            ],
                                            "nodeSelector": {"pool": "gpu"},
                                            "tolerations": [{"key": "gpu", "operator": "Exists"}],
                                        }
                                    }
                                },
                            },
                        }
                    ]
                },
            }
        },
        "manager": "trainer.kubeflow.org/kubeflow-sdk",
    }


def test_empty_patches_and_the_raw_dict_superset():
    assert RuntimePatch().to_dict() == {"manager": "trainer.kubeflow.org/kubeflow-sdk"}
    assert RuntimePatch(training_runtime_spec=TrainingRuntimeSpecPatch()).to_dict() == {
        "manager": "trainer.kubeflow.org/kubeflow-sdk"
    }
    raw = RuntimePatch(patch={"template": {"metadata": {"labels": {"x": "y"}}}}, manager="example.com/t")
    assert raw.to_dict() == {
        "trainingRuntimeSpec": {"template": {"metadata": {"labels": {"x": "y"}}}},
        "manager": "example.com/t",
    }
    with pytest.raises(ValidationError, match="not both"):
        RuntimePatch(training_runtime_spec=TrainingRuntimeSpecPatch(), patch={"template": {}})
    # positional, as upstream's dataclasses
    assert ReplicatedJobPatch("node").to_dict() == {"name": "node"}
    assert RuntimePatch(TrainingRuntimeSpecPatch(JobSetTemplatePatch({"labels": {"a": "b"}}))).to_dict()[
        "trainingRuntimeSpec"
    ] == {"template": {"metadata": {"labels": {"a": "b"}}}}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": " "}, "Container name must be a non-empty string"),
        ({"name": "node", "env": [{"value": "1"}]}, "needs a non-empty 'name'"),
        ({"name": "node", "env": [{"name": "A"}]}, "needs a 'value' or a 'valueFrom'"),
        ({"name": "node", "env": [{"name": "A", "valueFrom": {"bogus": {}}}]}, "secretKeyRef"),
        ({"name": "node", "env": ["A=1"]}, "valid dictionary"),
        ({"name": "node", "volume_mounts": [{"name": "d", "mountPath": "data"}]}, "absolute 'mountPath'"),
        ({"name": "node", "volume_mounts": [{"mountPath": "/d"}]}, "needs a non-empty 'name'"),
        ({"name": "node", "typo": 1}, "Extra inputs are not permitted"),
    ],
)
def test_container_patch_validation_is_upstreams(kwargs: dict[str, Any], match: str):
    with pytest.raises(ValueError, match=match):  # ValueError, as upstream raises: upstream code catches it
        ContainerPatch(**kwargs)


def test_container_patch_accepts_value_from():
    patch = ContainerPatch(name="node", env=[{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}])
    assert patch.to_dict()["env"][0]["valueFrom"] == {"secretKeyRef": {"name": "s", "key": "k"}}


def plan(options: list[Any]):
    (runtime,) = builtin_runtimes()
    return build_plan(
        backend="kubernetes", runtime=runtime, trainer=CustomTrainer(func=train), initializer=None, options=options
    )


def test_runtime_patch_lands_in_the_plan_and_needs_the_capability():
    p = plan([full_patch()])
    assert p.runtime_patches == (full_patch().to_dict(),)
    assert Capability.RUNTIME_PATCH in p.required_capabilities()
    assert Capability.CALLABLE_OPTIONS not in p.required_capabilities()


def test_callables_are_kept_in_order_for_the_backend_and_need_their_capability():
    calls: list[str] = []

    def first(job_spec: dict[str, Any], trainer: Any, backend: Any) -> None:
        calls.append("first")

    class Second:
        def __call__(self, job_spec: dict[str, Any], trainer: Any, backend: Any) -> None:
            calls.append("second")

    second = Second()
    p = plan([Name("x"), first, second, lambda job_spec, trainer, backend: None])
    assert p.callable_options[:2] == [first, second] and len(p.callable_options) == 3
    assert p.name == "x" and calls == []  # not applied by the plan: the backend applies them to its request
    assert Capability.CALLABLE_OPTIONS in p.required_capabilities()


@pytest.mark.parametrize("bad", [Name, "Name('x')", 3])
def test_non_callables_and_classes_are_refused(bad: Any):
    with pytest.raises(InvalidRequestError, match="callables option"):
        plan([bad])


def test_callable_options_are_refused_where_the_backend_lacks_them(tmp_path, monkeypatch):
    """A real installed plugin (dist-info on sys.path) that does not declare callable-options."""
    from test_registry import PLUGIN, make_dist, registry_for

    from kubeflow_trainer import TrainerClient, UnsupportedFeatureError

    make_dist(tmp_path, "dist-plain", "kft_test_plain", "plain", PLUGIN.format(cls="Plain", name="plain"))
    client = TrainerClient(backend="plain", registry=registry_for(tmp_path, monkeypatch))
    with pytest.raises(UnsupportedFeatureError, match="callable-options") as info:
        client.dry_run(trainer=CustomTrainer(func=train), options=[lambda job_spec, trainer, backend: None])
    assert info.value.missing == ("callable-options",)


def test_option_signatures_are_upstreams_dataclass_signatures():
    """``inspect.signature`` shows the fields (not ``*args``), as upstream's dataclass options do; our extra
    ``RuntimePatch`` fields come after upstream's, keyword-only."""
    import dataclasses
    import inspect

    from kubeflow_trainer.options import ActiveDeadlineSeconds, Labels, TrainerArgs

    args = inspect.signature(TrainerArgs).parameters
    assert [(p.name, p.kind) for p in args.values()] == [("args", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    assert list(inspect.signature(ContainerPatch).parameters) == ["name", "env", "volume_mounts", "security_context"]
    assert inspect.signature(ActiveDeadlineSeconds).parameters["seconds"].default is inspect.Parameter.empty
    patch = inspect.signature(RuntimePatch).parameters
    assert list(patch) == ["training_runtime_spec", "manager", "patch"]
    assert patch["training_runtime_spec"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert {patch["manager"].kind, patch["patch"].kind} == {inspect.Parameter.KEYWORD_ONLY}
    with pytest.raises(TypeError, match="at most 1 positional"):
        RuntimePatch(None, "example.com/m")
    with pytest.raises(TypeError, match="multiple values"):
        Name("a", name="b")
    assert dataclasses.asdict(Labels({"a": "b"})) == {"labels": {"a": "b"}}
