"""Upstream's documented examples, ported by the import rewrite (plus the declared substitutions only),
run on the real backends:

- local: to completion on the real local backend (real torchrun, real venvs);
- container: on the real Docker engine and on the real Podman service; an example that lets upstream's
  ``ContainerBackendConfig()`` auto-detect the engine runs twice, once with Docker reachable and once on a
  machine where only Podman answers (``DOCKER_HOST`` points at a socket that does not exist);
- kubernetes: on the test control plane (real kube-apiserver, Trainer and JobSet controllers and webhooks,
  KWOK nodes). KWOK runs no containers, so the example runs through its last ``train`` call and the test
  checks what can be checked: every TrainJob it submitted was accepted and got its JobSet.

Each example runs as a plain ``python`` program in its own folder, so ``inspect.getsource`` finds its
functions as it does in a notebook kernel.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import ENGINES_LOCK, locked
from porting import Example, cell_of_line, load_examples, port
from substitutions import ENVIRONMENT

EXAMPLE_TIMEOUT_S = 1500
"""Covers a cold local environment (torch + torchvision downloaded from the package index)."""

EXAMPLES = load_examples()

OPTIONAL_RUNTIMES = {
    "torch-distributed-with-cache": "trainer/base/runtimes/data-cache/torch_distributed_with_cache.yaml",
}
"""ClusterTrainingRuntimes that Kubeflow Trainer ships outside its default runtimes overlay (path under the
control plane's extracted manifests): an example that looks one up by name gets it installed first, as its
page tells the user to do ("Please ensure the runtime is installed")."""
REFUSED_AS_UPSTREAM = {
    "trainer/pytorch__data-cache__fine-tune-with-cache": (
        "must have volumeMount with name - initializer in container dataset-initializer",
        "Kubeflow Trainer v2.3.0's TrainJob webhook requires an 'initializer' volume mount in the runtime's "
        "dataset-initializer container for any TrainJob with spec.initializer.dataset, and its own "
        "torch-distributed-with-cache runtime has none; upstream's SDK sends the same spec.initializer",
    ),
}
"""Examples the real Trainer refuses whichever SDK submits them: example key -> (the API server's refusal,
why). The test passes only if ours fails with that refusal AND upstream's own SDK (kubeflow==0.5.0, its own
venv), running the same cells unported against the same control plane, fails with it too."""
OPTIONAL_RUNTIME_TAG = "v2.3.0"
"""The tag the default runtimes overlay gives Kubeflow Trainer's untagged images (the plane's Trainer)."""


def _params() -> list[object]:
    params: list[object] = []
    for ex in EXAMPLES:
        program = port(ex)
        engines = [None]
        if "container" in ex.backends:
            forced = re.findall(r'container_runtime="(docker|podman)"', program)
            engines = sorted(set(forced)) if forced else ["docker", "podman"]
        for engine in engines:
            suffix = f"[{engine}]" if engine else ""
            params.append(pytest.param(ex, engine, id=f"{ex.key}{suffix}", marks=pytest.mark.slow))
    return params


def _failure(program: str, out: str) -> str:
    lines = [int(n) for n in re.findall(r'File ".*?ported\.py", line (\d+)', out)]
    cell = cell_of_line(program, lines[-1]) if lines else None
    where = f"upstream cell {cell}" if cell is not None else "the program"
    return f"{where} failed:\n{out[-6000:]}"


def _trainjobs_and_jobsets(kubeconfig: Path, namespaces: list[str]) -> tuple[list[str], list[str]]:
    from kubernetes import client, config

    api = client.CustomObjectsApi(config.new_client_from_config(str(kubeconfig)))
    jobs: list[str] = []
    missing: list[str] = []
    for ns in namespaces:
        for tj in api.list_namespaced_custom_object("trainer.kubeflow.org", "v1alpha1", ns, "trainjobs")["items"]:
            name = tj["metadata"]["name"]
            jobs.append(f"{ns}/{name}")
            deadline = time.monotonic() + 60
            while True:
                sets = api.list_namespaced_custom_object("jobset.x-k8s.io", "v1alpha2", ns, "jobsets")["items"]
                if any(s["metadata"]["name"] == name for s in sets):
                    break
                if time.monotonic() > deadline:
                    missing.append(f"{ns}/{name}")
                    break
                time.sleep(1)
    return jobs, missing


@pytest.mark.parametrize(("example", "engine"), _params())
def test_upstream_example(example: Example, engine: str | None, request: pytest.FixtureRequest, tmp_path: Path):
    program = port(example)
    (tmp_path / "ported.py").write_text(program)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBEFLOW_TRAINER_")}
    namespaces: list[str] = []
    kubeconfig = None
    with ExitStack() as stack:
        if "kubernetes" in example.backends:
            namespace, kubeconfig = request.getfixturevalue("k8s_namespace")
            env["KUBECONFIG"] = str(kubeconfig)
            namespaces.append(namespace)
            for ns in re.findall(r'KubernetesBackendConfig\(namespace="([^"]+)"', program):
                _ensure_namespace(kubeconfig, ns)
                namespaces.append(ns)
            for runtime, manifest in OPTIONAL_RUNTIMES.items():
                if f'"{runtime}"' in program:
                    _ensure_runtime(kubeconfig, request.getfixturevalue("plane"), manifest)
        env.update({name: value for name, (value, _why) in ENVIRONMENT.get(example.key, {}).items()})
        if "container" in example.backends:
            engines_env = request.getfixturevalue("engines_env")
            stack.enter_context(locked(ENGINES_LOCK))
            env.update(engines_env)
            env["KUBEFLOW_TRAINER_IMAGE"] = engines_env["KFT_TORCH_IMAGE"]
            if engine == "podman":
                env["DOCKER_HOST"] = f"unix://{tmp_path}/no-docker-here.sock"
                env["CONTAINER_HOST"] = engines_env["KFT_PODMAN_HOST"]
        started = time.monotonic()
        try:
            run = subprocess.run(
                [sys.executable, "ported.py"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=EXAMPLE_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            pytest.fail(f"{example.url} did not finish in {EXAMPLE_TIMEOUT_S} s:\n{out[-4000:]}", pytrace=False)
        print(f"{example.key}: rc {run.returncode} in {time.monotonic() - started:.1f} s")
        if example.key in REFUSED_AS_UPSTREAM:
            _check_refused_as_upstream(example, run, tmp_path, env, request)
            return
        if run.returncode != 0:
            pytest.fail(f"{example.url}\n{_failure(program, run.stdout + run.stderr)}", pytrace=False)
        if kubeconfig is not None:
            jobs, missing = _trainjobs_and_jobsets(kubeconfig, namespaces)
            assert jobs, f"{example.url} ran but no TrainJob exists in {namespaces}"
            assert not missing, f"TrainJobs accepted but without a JobSet after 60 s: {missing}"


def _ensure_namespace(kubeconfig: Path, name: str) -> None:
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    try:
        api.create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise


def _ensure_runtime(kubeconfig: Path, plane: dict[str, object], manifest: str) -> None:
    """Install an optional ClusterTrainingRuntime from the plane's Trainer manifests (kept if it exists),
    with the overlay's image tag on Kubeflow Trainer's untagged images."""
    import yaml
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    path = Path(str(plane["bin_dir"])).parent / "manifests" / manifest
    body = yaml.safe_load(path.read_text())
    for rjob in body["spec"]["template"]["spec"]["replicatedJobs"]:
        for container in rjob["template"]["spec"]["template"]["spec"]["containers"]:
            image = container["image"]
            if image.startswith("ghcr.io/kubeflow/trainer/") and ":" not in image.rsplit("/", 1)[1]:
                container["image"] = f"{image}:{OPTIONAL_RUNTIME_TAG}"
    api = client.CustomObjectsApi(config.new_client_from_config(str(kubeconfig)))
    try:
        api.create_cluster_custom_object("trainer.kubeflow.org", "v1alpha1", "clustertrainingruntimes", body)
    except ApiException as exc:
        if exc.status != 409:
            raise


def _check_refused_as_upstream(
    example: Example,
    ours: subprocess.CompletedProcess[str],
    tmp_path: Path,
    env: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    refusal, why = REFUSED_AS_UPSTREAM[example.key]
    out = ours.stdout + ours.stderr
    assert ours.returncode != 0 and refusal in out, (
        f"{example.key} is declared refused by the real Trainer ({why}), but ours did not fail with "
        f"{refusal!r}: update REFUSED_AS_UPSTREAM\n{out[-4000:]}"
    )
    upstream_python = request.getfixturevalue("upstream_python")
    folder = tmp_path / "upstream-sdk"
    folder.mkdir()
    (folder / "original.py").write_text(port(example, rewrite=False))
    theirs = subprocess.run(
        [str(upstream_python), "original.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_S,
        check=False,
    )
    their_out = theirs.stdout + theirs.stderr
    assert theirs.returncode != 0 and refusal in their_out, (
        f"upstream's SDK was not refused with {refusal!r} for {example.key}, ours was: ours must change\n"
        f"{their_out[-4000:]}"
    )
