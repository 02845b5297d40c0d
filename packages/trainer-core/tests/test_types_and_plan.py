"""Public types, the job plan, the rendezvous builder and function shipping."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from kubeflow_trainer import (
    BuiltinTrainer,
    CustomTrainer,
    CustomTrainerContainer,
    Initializer,
    InvalidRequestError,
    Labels,
    Name,
    S3DatasetInitializer,
    TorchTuneConfig,
)
from kubeflow_trainer.plan import build_plan
from kubeflow_trainer.rendezvous import Rendezvous
from kubeflow_trainer.resources import parse_resources
from kubeflow_trainer.runtimes import builtin_runtimes, runtime_from_object
from kubeflow_trainer.shipping import build_script


def train(lr: float = 0.1, tag: str = "x"):
    print("TRAIN", lr, tag)


def needs_args(a, b):
    print(a + b)


def test_custom_trainer_fields_and_defaults():
    t = CustomTrainer(func=train)
    assert t.func_args is None and t.num_nodes is None and t.pip_index_urls is None
    assert CustomTrainer(func=train, func_args={"lr": 0.5}).func_args == {"lr": 0.5}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"func": train, "num_nodes": 0}, "num_nodes"),
        ({"func": lambda: None}, "func"),
        ({"func": "train"}, "func"),
        ({"func": print}, "func"),
        ({"func": train, "func_args": {"lr": {1, 2}}}, "func_args"),
        ({"func": train, "func_args": {"nope": 1}}, "func_args"),
        ({"func": needs_args}, "func_args"),
        ({"func": train, "resources_per_node": {"cpu": "lots"}}, "resources_per_node"),
        ({"func": train, "resources_per_node": {"gpu": 1.5}}, "resources_per_node"),
        ({"func": train, "resources_per_node": {"flux": 1}}, "resources_per_node"),
        ({"func": train, "env": {"1BAD": "x"}}, "env"),
        ({"func": train, "env": {"OK": 1}}, "env"),
        ({"func": train, "image": "has space"}, "image"),
        ({"func": train, "unknown_field": 1}, "unknown_field"),
    ],
)
def test_invalid_values_fail_at_construction_naming_the_field(kwargs, field):
    with pytest.raises(ValidationError) as info:
        CustomTrainer(**kwargs)
    assert field in str(info.value)


def test_closures_are_refused():
    secret = 3

    def inner():
        print(secret)

    with pytest.raises(ValidationError, match="enclosing function"):
        CustomTrainer(func=inner)


def test_options_validate_and_accept_positional_fields():
    assert Name("ok-name").name == "ok-name"
    for bad in ("Upper", "-dash", "a" * 64, "under_score", ""):
        with pytest.raises(ValidationError):
            Name(bad)
    with pytest.raises(ValidationError):
        Labels(labels={"bad key!": "v"})
    with pytest.raises(ValidationError, match="extra"):
        Name(name="x", colour="red")


def test_initializer_uris_are_checked():
    with pytest.raises(ValidationError, match="s3://"):
        S3DatasetInitializer(storage_uri="http://bucket/x")
    assert Initializer(dataset=S3DatasetInitializer(storage_uri="s3://b/p")).dataset is not None


def test_resources_parse_like_kubernetes_quantities():
    res = parse_resources({"cpu": "500m", "memory": "2Gi", "gpu": 2})
    assert parse_resources({"nvidia.com/mig-1g.5gb": 1}).extended == {"nvidia.com/mig-1g.5gb": 1}
    assert res.cpu == 0.5 and res.memory == 2 * 2**30 and res.gpu == 2
    assert parse_resources({"cpu": 3}).processes_per_node() == 3
    assert parse_resources({"gpu": 4, "cpu": 8}).processes_per_node() == 4
    assert parse_resources({"memory": "10G"}).memory == 10**10
    assert parse_resources({"gpu": 1}).kubernetes_quantities() == {"nvidia.com/gpu": "1"}
    with pytest.raises(ValueError, match="not both"):
        parse_resources({"gpu": 1, "mig-1g.5gb": 1})


def test_builtin_runtime_is_clustertrainingruntime_shaped():
    (runtime,) = builtin_runtimes()
    assert runtime.name == "torch-distributed"
    assert runtime.spec is not None and runtime.spec["kind"] == "ClusterTrainingRuntime"
    assert runtime.trainer.framework == "torch" and "torch" in runtime.trainer.packages
    obj = dict(runtime.spec)
    obj["metadata"] = {"name": "tune", "labels": {"trainer.kubeflow.org/framework": "torchtune"}}
    assert runtime_from_object(obj).trainer.trainer_type.value == "BuiltinTrainer"


def plan_for(trainer, **kw):
    (runtime,) = builtin_runtimes()
    return build_plan(
        backend="x", runtime=runtime, trainer=trainer, initializer=kw.get("initializer"), options=kw.get("options")
    )


def test_plan_steps_nodes_and_capabilities():
    plan = plan_for(
        CustomTrainer(func=train, num_nodes=3, resources_per_node={"cpu": 2}, packages_to_install=["a"]),
        options=[Name("my-job"), Labels(labels={"a": "b"})],
    )
    assert plan.name == "my-job" and plan.num_nodes == 3 and plan.procs_per_node == 2
    assert [s.name for s in plan.steps] == ["node-0", "node-1", "node-2"]
    needs = {str(c) for c in plan.required_capabilities()}
    assert needs == {"multi-node", "multi-process", "cpu-limit", "packages", "labels"}
    argv = plan.node_command(2, "head", 1234, "/ws", torchrun="/v/bin/torchrun")
    assert argv[0] == "/v/bin/torchrun" and "--node-rank=2" in argv and argv[-1] == "/ws/train.py"
    env = plan.node_env(2, "head", 1234)
    assert env["PET_NODE_RANK"] == "2" and env["PET_MASTER_ADDR"] == "head" and env["PET_NNODES"] == "3"


def test_plan_refuses_mismatched_trainer_and_runtime():
    with pytest.raises(InvalidRequestError, match="BuiltinTrainer"):
        plan_for(BuiltinTrainer(config=TorchTuneConfig()))
    with pytest.raises(InvalidRequestError, match="trainer"):
        plan_for("nope")
    with pytest.raises(InvalidRequestError, match="more than once"):
        plan_for(CustomTrainer(func=train), options=[Name("a"), Name("b")])
    plan = plan_for(
        CustomTrainerContainer(image="img:1", command=["python"]),
        initializer=Initializer(dataset=S3DatasetInitializer(storage_uri="s3://b/d")),
    )
    assert [s.name for s in plan.steps] == ["dataset-initializer", "node-0"]
    assert {str(c) for c in plan.required_capabilities()} == {"container-trainer", "initializers"}


def test_rendezvous_builder():
    rdzv = Rendezvous(num_nodes=2, procs_per_node=4, node_rank=1, master_addr="n0", master_port=29500)
    assert rdzv.world_size == 8
    assert rdzv.torchrun_args("t.py")[:4] == ["torchrun", "--nnodes=2", "--nproc-per-node=4", "--node-rank=1"]
    with pytest.raises(ValueError):
        Rendezvous(num_nodes=2, procs_per_node=1, node_rank=2, master_addr="n0")


def test_shipped_script_runs_with_kwargs_and_no_shell_expansion(tmp_path):
    tricky = "$HOME `id` $(whoami) 'q' \"dq\" \\n"
    script = tmp_path / "train.py"
    script.write_text(build_script(train, {"lr": 0.25, "tag": tricky}))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"TRAIN 0.25 {tricky}"
