"""Our TrainJob bodies against upstream ``kubeflow==0.5.0``'s, field by field, for the same requests.

Upstream runs in its own venv (``.bench/upstream`` at the repository root, made here with ``kubeflow==0.5.0``
when missing) on upstream_bodies.py: upstream's own KubernetesBackend.train() builds each body; only its API
call is replaced by a recorder (a fake for the one call that would need a cluster). The requests come from
upstream_cases.py, built with upstream's names there and with ours here.

Intended differences, asserted as such: ours adds the label ``trainer.kubeflow.org/created-by`` and
``metadata.namespace`` and ``runtimeRef.apiGroup`` (the defaults upstream leaves to the server); a CustomTrainer's
command is our own bootstrap (the function is shipped differently); quantities are strings where upstream
sends floats for integers (``"1"`` vs ``1.0``, the same quantity).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes.utils import parse_quantity
from upstream_cases import CASE_NAMES, TORCHTUNE_RUNTIME, cases, names_from

import kubeflow_trainer
import kubeflow_trainer.options
from kubeflow_trainer.plan import build_plan
from kubeflow_trainer.runtimes import builtin_runtime_objects, runtime_from_object
from kubeflow_trainer_k8s.render import SDK_LABEL, apply_callable_options, render_trainjob

ROOT = Path(__file__).resolve().parents[3]
UPSTREAM = ROOT / ".bench" / "upstream"
UPSTREAM_VERSION = "0.5.0"
HERE = Path(__file__).parent


def _has_upstream(python: Path) -> bool:
    if not python.exists():  # a fresh clone: the venv is made below
        return False
    probe = "import importlib.metadata as m, kubeflow.trainer; print(m.version('kubeflow'))"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    return done.returncode == 0 and done.stdout.strip() == UPSTREAM_VERSION


@pytest.fixture(scope="module")
def upstream_python() -> Path:
    """Upstream's venv, made once (under a lock: other sessions share the folder) from the package index."""
    python = UPSTREAM / "bin" / "python"
    UPSTREAM.parent.mkdir(exist_ok=True)
    with open(UPSTREAM.parent / "upstream.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _has_upstream(python):
            uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
            if Path(uv).exists():
                steps = [[uv, "venv", "-q", str(UPSTREAM)], [uv, "pip", "install", "-q", "--python", str(python)]]
            else:
                steps = [[sys.executable, "-m", "venv", str(UPSTREAM)], [str(python), "-m", "pip", "install", "-q"]]
            steps[1].append(f"kubeflow=={UPSTREAM_VERSION}")
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True, check=False)
                if done.returncode:
                    pytest.fail(f"could not install upstream kubeflow=={UPSTREAM_VERSION}: {done.stderr[-2000:]}")
    return python


def runtime_objects() -> dict[str, dict[str, Any]]:
    (torch,) = [o for o in builtin_runtime_objects() if o["metadata"]["name"] == "torch-distributed"]
    return {"torch": torch, "torchtune": TORCHTUNE_RUNTIME}


@pytest.fixture(scope="module")
def upstream_bodies(upstream_python: Path) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [str(upstream_python), str(HERE / "upstream_bodies.py"), json.dumps(runtime_objects())],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    bodies: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return bodies


def our_bodies() -> dict[str, dict[str, Any]]:
    names = names_from(kubeflow_trainer, kubeflow_trainer.options)
    runtimes = {key: runtime_from_object(obj) for key, obj in runtime_objects().items()}
    out = {}
    for case, kwargs in cases(names).items():
        plan = build_plan(
            backend="kubernetes",
            runtime=runtimes[kwargs["runtime"]],
            trainer=kwargs["trainer"],
            initializer=kwargs.get("initializer"),
            options=kwargs.get("options"),
        )
        out[case] = apply_callable_options(render_trainjob(plan, "ns"), plan, backend=None)
    return out


def quantities(resources: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {part: {k: parse_quantity(v) for k, v in values.items()} for part, values in (resources or {}).items()}


def without_empty_env(initializer: dict[str, Any]) -> dict[str, Any]:
    return {t: {k: v for k, v in e.items() if not (k == "env" and not v)} for t, e in initializer.items()}


@pytest.fixture(scope="module")
def ours() -> dict[str, dict[str, Any]]:
    return our_bodies()


def test_both_sides_built_every_case(ours: dict[str, Any], upstream_bodies: dict[str, Any]) -> None:
    assert sorted(ours) == sorted(upstream_bodies) == sorted(CASE_NAMES)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_body_matches_upstream(case: str, ours: dict[str, Any], upstream_bodies: dict[str, dict[str, Any]]) -> None:
    theirs, ours = upstream_bodies[case], ours[case]
    assert ours["apiVersion"] == theirs["apiVersion"] and ours["kind"] == theirs["kind"]
    # metadata: the same name, labels (plus ours) and annotations
    labels = dict(ours["metadata"]["labels"])
    assert labels.pop(SDK_LABEL) == "kubeflow-trainer-sdk"
    assert ours["metadata"]["name"] == theirs["metadata"]["name"]
    assert labels == (theirs["metadata"].get("labels") or {})
    assert ours["metadata"].get("annotations") == theirs["metadata"].get("annotations")
    assert ours["metadata"]["namespace"] == "ns" and "namespace" not in theirs["metadata"]
    # spec: every field upstream sets, with the same value
    spec, their_spec = ours["spec"], theirs["spec"]
    assert set(their_spec) <= set(spec), f"upstream sets {sorted(set(their_spec) - set(spec))} which we do not"
    ref = dict(spec["runtimeRef"])
    assert ref.pop("apiGroup") == "trainer.kubeflow.org"
    assert ref == their_spec["runtimeRef"]
    assert spec.get("runtimePatches") == their_spec.get("runtimePatches")
    assert spec.get("activeDeadlineSeconds") == their_spec.get("activeDeadlineSeconds")
    if "initializer" in their_spec:
        assert without_empty_env(spec["initializer"]) == without_empty_env(their_spec["initializer"])
    trainer, their_trainer = dict(spec.get("trainer") or {}), dict(their_spec.get("trainer") or {})
    assert quantities(trainer.pop("resourcesPerNode", None)) == quantities(their_trainer.pop("resourcesPerNode", None))
    # upstream leaves numNodes to the runtime when the request has none; we render the runtime's value
    assert trainer.pop("numNodes", 1) == their_trainer.pop("numNodes", 1)
    if case.startswith("custom"):  # our own launcher instead of upstream's bash script: compared elsewhere
        trainer.pop("command"), their_trainer.pop("command")
        trainer.pop("env", None), trainer.pop("numProcPerNode", None)  # ours: the shipped files
    assert trainer == their_trainer


def test_torchtune_renders_upstreams_command_and_args(
    ours: dict[str, Any], upstream_bodies: dict[str, dict[str, Any]]
) -> None:
    """The Trainer's torchtune plugin acts only on `tune run`; the args are upstream's, in its order."""
    tune = ours["torchtune-full"]["spec"]["trainer"]
    assert tune["command"] == ["tune", "run"] == upstream_bodies["torchtune-full"]["spec"]["trainer"]["command"]
    assert "dataset.data_dir=/workspace/dataset/data" in tune["args"]
    assert tune["args"] == upstream_bodies["torchtune-full"]["spec"]["trainer"]["args"]
