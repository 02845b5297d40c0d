"""Parity of our public surface with upstream ``kubeflow==0.5.0``, installed in its own cached venv.

Compared: every public name of ``kubeflow.trainer`` and ``kubeflow.trainer.options`` (their ``__all__``),
and every name upstream's docs and examples import from other submodules (collected from the vendored
examples); for each, the parameters of ``inspect.signature`` (names, kinds, defaults, order; our extra
parameters are allowed after upstream's when they have defaults), a type's fields (names, defaults,
order), enum members, and public methods. Differences we intend are declared in ``INTENDED_DIFFERENCES``
(mirrored by the README's "Coming from kubeflow" section); anything else fails, one line per difference.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import UPSTREAM_VERSION
from porting import load_examples

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FULL_MODULES = ("kubeflow.trainer", "kubeflow.trainer.options")

_NO_REGISTRY = (
    "default None = the trainer's image (missing client libraries are pip-installed): upstream's "
    "ghcr.io/kubeflow/trainer/*-initializer:latest images need a registry"
)
_NO_TIME_LIMIT = "default None = no time limit unless set: a large download is not cut off silently after 600 s"
_PULL_POLICY = (
    "a default factory: KUBEFLOW_TRAINER_PULL_POLICY, else upstream's 'IfNotPresent', so one script runs "
    "unchanged on a machine without a registry"
)
_SUPERSET_DEFAULT = (
    "a default where upstream requires a value (upstream code always passes it): runtimes of backends "
    "without images (local) and plugins' runtimes omit it"
)

INTENDED_DIFFERENCES: dict[str, str] = {
    "kubeflow.trainer.ContainerBackendConfig(dataset_initializer_image)": _NO_REGISTRY,
    "kubeflow.trainer.ContainerBackendConfig.dataset_initializer_image": _NO_REGISTRY,
    "kubeflow.trainer.ContainerBackendConfig(model_initializer_image)": _NO_REGISTRY,
    "kubeflow.trainer.ContainerBackendConfig.model_initializer_image": _NO_REGISTRY,
    "kubeflow.trainer.ContainerBackendConfig(initializer_timeout)": _NO_TIME_LIMIT,
    "kubeflow.trainer.ContainerBackendConfig.initializer_timeout": _NO_TIME_LIMIT,
    "kubeflow.trainer.ContainerBackendConfig(pull_policy)": _PULL_POLICY,
    "kubeflow.trainer.CustomTrainer.pip_index_urls": (
        "default None = the installing machine's pip configuration (DEFAULT_PIP_INDEX_URLS still sets one): "
        "a hard-coded https://pypi.org/simple silently overrides private indexes"
    ),
    "kubeflow.trainer.KubernetesBackendConfig.Config": (
        "pydantic v2's model_config (same arbitrary_types_allowed, plus extra='forbid') instead of the "
        "deprecated v1 inner class Config"
    ),
    "kubeflow.trainer.Runtime(kind)": _SUPERSET_DEFAULT + " (default ClusterTrainingRuntime, as built-in runtimes)",
    "kubeflow.trainer.Runtime.kind": _SUPERSET_DEFAULT + " (default ClusterTrainingRuntime, as built-in runtimes)",
    "kubeflow.trainer.RuntimeTrainer(image)": _SUPERSET_DEFAULT,
    "kubeflow.trainer.RuntimeTrainer.image": _SUPERSET_DEFAULT,
}
"""``<module>.<name>[.<member>]`` -> why ours differs on purpose (``name(param)``: the signature,
``name.field``: the field). Keep in step with README.md's "Coming from kubeflow" section (checked)."""


def imported_names() -> dict[str, set[str]]:
    """Module -> names the vendored examples import from it (``from M import x`` and ``M.x`` uses of an
    imported submodule)."""
    wanted: dict[str, set[str]] = {}
    for ex in load_examples():
        tree = ast.parse("\n".join(ex.cells))
        submodules: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kubeflow.trainer"):
                for alias in node.names:
                    if alias.name != "*":
                        wanted.setdefault(node.module or "", set()).add(alias.name)
                        submodules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in submodules:
                wanted.setdefault(submodules[node.value.id], set()).add(node.attr)
    return wanted


def _dump(python: Path, modules: list[str], ours: bool) -> dict[str, Any]:
    args = [str(python), str(HERE / "parity_dump.py"), *modules, *(["--ours"] if ours else [])]
    out = subprocess.run(args, check=True, capture_output=True, text=True, cwd=HERE).stdout
    return json.loads(out)


def _compare_params(key: str, up: Any, ours: Any, diffs: dict[str, str]) -> None:
    if isinstance(up, str) or isinstance(ours, str):
        if up != ours:
            diffs[key] = f"signature {ours} (upstream {up})"
        return
    up_names = [p[0] for p in up]
    our_names = [p[0] for p in ours]
    if our_names[: len(up_names)] != up_names:
        diffs[key] = f"parameters {our_names} (upstream {up_names})"
        return
    for u, o in zip(up, ours, strict=False):
        if u[1:] != o[1:]:
            diffs[f"{key}({u[0]})"] = f"kind/default {o[1]} {o[2]} (upstream {u[1]} {u[2]})"
    for extra in ours[len(up) :]:
        if extra[2] == "<required>" and extra[1] not in {"VAR_POSITIONAL", "VAR_KEYWORD"}:
            diffs[f"{key}({extra[0]})"] = "extra required parameter (upstream code does not pass it)"


def _compare_fields(key: str, up: list[list[str]] | None, ours: list[list[str]] | None, diffs: dict[str, str]):
    if up is None:
        return
    if ours is None:
        diffs[key] = "not a dataclass/pydantic type with fields (upstream has fields)"
        return
    up_names = [f[0] for f in up]
    our_names = [f[0] for f in ours]
    if our_names[: len(up_names)] != up_names:
        diffs[f"{key}.fields"] = f"fields {our_names} (upstream {up_names})"
        return
    for u, o in zip(up, ours, strict=False):
        if u[1] != o[1]:
            diffs[f"{key}.{u[0]}"] = f"default {o[1]} (upstream {u[1]})"


def compare(up: dict[str, Any], ours: dict[str, Any]) -> dict[str, str]:
    """Every difference between two dumps: key -> what differs."""
    diffs: dict[str, str] = {}
    for module, names in up.items():
        if "error" in names:
            continue
        theirs = ours.get(module, {})
        if "error" in theirs:
            diffs[module] = f"module missing: {theirs['error']}"
            continue
        for name, u in names.items():
            key = f"{module}.{name}"
            o = theirs.get(name)
            if o is None:
                diffs[key] = "missing"
                continue
            if o["kind"] == "error":
                diffs[key] = f"fails to load: {o['error']}"
                continue
            if u["kind"] != o["kind"] and {u["kind"], o["kind"]} != {"class", "function"}:
                diffs[key] = f"is a {o['kind']} (upstream a {u['kind']})"
                continue
            if u["kind"] == "enum":
                if u["members"] != o.get("members"):
                    diffs[key] = f"members {o.get('members')} (upstream {u['members']})"
            elif u["kind"] == "class":
                _compare_params(key, u["init"], o.get("init", o.get("params")), diffs)
                _compare_fields(key, u["fields"], o.get("fields"), diffs)
                for meth, p in u["methods"].items():
                    if meth not in o.get("methods", {}):
                        diffs[f"{key}.{meth}"] = "missing method"
                    else:
                        _compare_params(f"{key}.{meth}", p, o["methods"][meth], diffs)
            elif u["kind"] == "function":
                _compare_params(key, u["params"], o.get("params", o.get("init")), diffs)
            elif u["kind"] == "constant" and u["value"] != o.get("value"):
                diffs[key] = f"value {o.get('value')} (upstream {u['value']})"
    return diffs


def test_compare_reports_each_kind_of_difference():
    """The comparison itself (a fast check of our own logic, in addition to the real run below)."""
    up = {
        "m": {
            "f": {"kind": "function", "params": [["a", "POSITIONAL_OR_KEYWORD", "1"]]},
            "g": {"kind": "constant", "value": "1"},
            "E": {"kind": "enum", "members": {"A": "'a'"}},
        }
    }
    ours = {
        "m": {
            "f": {
                "kind": "function",
                "params": [["a", "POSITIONAL_OR_KEYWORD", "2"], ["b", "KEYWORD_ONLY", "<required>"]],
            },
            "E": {"kind": "enum", "members": {}},
        }
    }
    assert set(compare(up, ours)) == {"m.f(a)", "m.f(b)", "m.g", "m.E"}
    assert compare(up, up) == {}


@pytest.fixture(scope="session")
def surfaces(upstream_python: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, set[str]]]:
    wanted = imported_names()
    modules = sorted(set(FULL_MODULES) | set(wanted))
    up = _dump(upstream_python, modules, ours=False)
    ours = _dump(Path(sys.executable), modules, ours=True)
    for module, names in wanted.items():
        if module in FULL_MODULES or "error" in up.get(module, {}):
            continue
        up[module] = {n: v for n, v in up[module].items() if n in names}
    return up, ours, wanted


def test_upstream_names_exist_with_upstream_signatures(surfaces):
    up, ours, _ = surfaces
    assert up["kubeflow.trainer"], "the upstream dump is empty: the upstream venv is broken"
    diffs = compare(up, ours)
    unexpected = {k: v for k, v in diffs.items() if k not in INTENDED_DIFFERENCES}
    stale = sorted(set(INTENDED_DIFFERENCES) - set(diffs))
    lines = [f"{k}: {v}" for k, v in sorted(unexpected.items())]
    lines += [f"{k}: declared in INTENDED_DIFFERENCES but no longer differs" for k in stale]
    assert not lines, f"{len(lines)} difference(s) from kubeflow=={UPSTREAM_VERSION}:\n" + "\n".join(lines)


def test_names_the_docs_import_that_upstream_lacks_exist_here(surfaces):
    """Docs written for upstream main import paths 0.5.0 lacks (``kubeflow.trainer.types.CustomTrainer``,
    ``kubeflow.trainer.backends.localprocess.LocalProcessBackendConfig``): they must exist here."""
    up, ours, wanted = surfaces
    missing = []
    for module, names in sorted(wanted.items()):
        for name in sorted(names):
            if name not in up.get(module, {}) and name not in ours.get(module, {}):
                missing.append(f"{module}.{name}")
    assert not missing, f"names upstream's docs import that are missing here: {missing}"


def test_readme_mirrors_intended_differences():
    readme = (ROOT / "README.md").read_text()
    assert "## Coming from kubeflow" in readme, "README.md has no 'Coming from kubeflow' section"
    section = readme.split("## Coming from kubeflow", 1)[1].split("\n## ", 1)[0]
    absent = [k for k in INTENDED_DIFFERENCES if f"`{k}`" not in section]
    assert not absent, f"README's 'Coming from kubeflow' section does not list: {absent}"
