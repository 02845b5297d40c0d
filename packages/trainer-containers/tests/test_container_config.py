"""ContainerBackendConfig and TrainingRuntimeSource: validation, runtime files, and the engine auto-detection
(select_backend) through a real BackendRegistry whose "docker" and "podman" backends run on FakeEngines."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kubeflow_trainer import BackendSpec, hookimpl
from kubeflow_trainer.backend import ENTRY_POINT_GROUP
from kubeflow_trainer.errors import BackendNotFoundError, BackendUnavailableError, InvalidRequestError
from kubeflow_trainer.registry import BackendRegistry
from kubeflow_trainer.runtimes import builtin_runtimes
from kubeflow_trainer_containers import CAPABILITIES, ContainerBackend, ContainerBackendConfig, TrainingRuntimeSource
from kubeflow_trainer_containers.config import BUILTIN_SOURCE, host_from_container_host
from kubeflow_trainer_containers.fake import FakeEngine

TORCH_RUNTIME = Path(sys.modules["kubeflow_trainer.runtimes"].__file__ or "").parent / "torch-distributed.json"


def runtime_object(name: str, image: str = "my/image:1") -> dict[str, Any]:
    """The built-in torch runtime's ClusterTrainingRuntime, renamed and with another image."""
    obj = json.loads(TORCH_RUNTIME.read_text())
    obj["metadata"]["name"] = name
    for job in obj["spec"]["template"]["spec"]["replicatedJobs"]:
        for container in job["template"]["spec"]["template"]["spec"]["containers"]:
            container["image"] = image
    return obj


# TrainingRuntimeSource ----------------------------------------------------------------------------------
def test_default_source_is_the_builtin_runtimes():
    assert TrainingRuntimeSource().sources == [BUILTIN_SOURCE]
    assert [r.name for r in TrainingRuntimeSource().runtimes()] == [r.name for r in builtin_runtimes()]


@pytest.mark.parametrize(
    "source", ["github://someone/else", "https://example.com/rt.json", "http://x/y", "relative/dir", "file://rel"]
)
def test_unsupported_sources_are_refused_with_what_to_do(source):
    with pytest.raises(ValidationError, match=r"is not supported: use 'github://kubeflow/trainer'.*file:///path"):
        TrainingRuntimeSource(sources=[source])


def test_a_runtime_file_comes_first_and_builtins_fill_in(tmp_path):
    file = tmp_path / "mine.json"
    file.write_text(json.dumps(runtime_object("torch-distributed", image="mine/torch:2")))
    runtimes = TrainingRuntimeSource(sources=[f"file://{file}", BUILTIN_SOURCE]).runtimes()
    assert [r.name for r in runtimes] == ["torch-distributed"]
    assert runtimes[0].trainer.image == "mine/torch:2"


def test_a_directory_of_runtimes_in_name_order_and_others_ignored(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps(runtime_object("rt-b")))
    (tmp_path / "a.json").write_text(json.dumps(runtime_object("rt-a")))
    (tmp_path / "notes.txt").write_text("not a runtime")
    (tmp_path / "other.json").write_text(json.dumps({"kind": "ConfigMap", "metadata": {"name": "x"}}))
    names = [r.name for r in TrainingRuntimeSource(sources=[str(tmp_path)]).runtimes()]
    assert names == ["rt-a", "rt-b", *(r.name for r in builtin_runtimes())]


def test_a_missing_source_says_so(tmp_path):
    with pytest.raises(InvalidRequestError, match="does not exist; pass an existing file or directory"):
        TrainingRuntimeSource(sources=[str(tmp_path / "nope.json")]).runtimes()


def test_a_malformed_runtime_names_its_source(tmp_path):
    bad = runtime_object("bad")
    del bad["metadata"]["labels"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    expected = r"runtime source '.*bad\.json'.*has no trainer.kubeflow.org/framework"
    with pytest.raises(InvalidRequestError, match=expected):
        TrainingRuntimeSource(sources=[str(tmp_path / "bad.json")]).runtimes()


def test_yaml_without_pyyaml_says_how_to_read_it(tmp_path, monkeypatch):
    (tmp_path / "rt.yaml").write_text("kind: ClusterTrainingRuntime\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML not installed (import raises ImportError)
    with pytest.raises(InvalidRequestError, match=r"is YAML; install PyYAML \(pip install pyyaml\) or convert it"):
        TrainingRuntimeSource(sources=[str(tmp_path)]).runtimes()


def test_extra_fields_are_refused():
    with pytest.raises(ValidationError, match="extra"):
        TrainingRuntimeSource(sources=[BUILTIN_SOURCE], url="x")  # type: ignore[call-arg]


# ContainerBackendConfig fields --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "policy"), [("ifnotpresent", "IfNotPresent"), ("ALWAYS", "Always"), ("Never", "Never")]
)
def test_pull_policy_is_case_insensitive(given, policy):
    assert ContainerBackendConfig(pull_policy=given).pull_policy == policy


def test_pull_policy_default_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("KUBEFLOW_TRAINER_PULL_POLICY", "never")
    assert ContainerBackendConfig().pull_policy == "Never"


def test_a_bad_pull_policy_names_the_choices():
    expected = "pull_policy must be one of IfNotPresent, Always, Never; got 'sometimes'"
    with pytest.raises(ValidationError, match=expected):
        ContainerBackendConfig(pull_policy="sometimes")  # type: ignore[arg-type]


def test_a_bad_shm_size_is_refused():
    with pytest.raises(ValidationError, match="shm_size"):
        ContainerBackendConfig(shm_size="lots")


def test_image_default_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("KUBEFLOW_TRAINER_IMAGE", "env/image:1")
    assert ContainerBackendConfig().image == "env/image:1"


def test_container_host_fills_host_only_when_unset():
    assert host_from_container_host({"container_host": "unix:///a"}) == {
        "container_host": "unix:///a",
        "host": "unix:///a",
    }
    assert host_from_container_host({"container_host": "unix:///a", "host": "unix:///b"})["host"] == "unix:///b"
    assert host_from_container_host({"host": "unix:///b"}) == {"host": "unix:///b"}
    assert host_from_container_host("not a dict") == "not a dict"


# select_backend: auto-detection through a real registry -------------------------------------------------
class FakeDockerConfig(ContainerBackendConfig):
    """Stands for DockerBackendConfig."""


class FakePodmanConfig(ContainerBackendConfig):
    """Stands for PodmanBackendConfig."""


class ClosingEngine(FakeEngine):
    closed = False

    def close(self) -> None:
        self.closed = True


ENGINES: dict[str, ClosingEngine] = {}
CONFIGS: list[ContainerBackendConfig] = []


def _spec(name: str, config_class: type[ContainerBackendConfig]) -> BackendSpec:
    def factory(config: ContainerBackendConfig) -> ContainerBackend:
        CONFIGS.append(config)
        return ContainerBackend(config, ENGINES[name])

    return BackendSpec(name=name, config_class=config_class, factory=factory, capabilities=CAPABILITIES)


class docker_plugin:  # what a plugin module holds: a hook implementation
    @staticmethod
    @hookimpl
    def trainer_register_backends(register: Any) -> None:
        register(_spec("docker", FakeDockerConfig))


class podman_plugin:
    @staticmethod
    @hookimpl
    def trainer_register_backends(register: Any) -> None:
        register(_spec("podman", FakePodmanConfig))


def registry(*names: str) -> BackendRegistry:
    eps = [metadata.EntryPoint(name=n, value=f"{__name__}:{n}_plugin", group=ENTRY_POINT_GROUP) for n in names]
    return BackendRegistry(entry_points=eps)


@pytest.fixture(autouse=True)
def engines() -> dict[str, ClosingEngine]:
    ENGINES.clear()
    CONFIGS.clear()
    ENGINES.update(docker=ClosingEngine("docker"), podman=ClosingEngine("podman"))
    return ENGINES


def test_auto_detection_prefers_docker(engines):
    spec, backend = ContainerBackendConfig().select_backend(registry("docker", "podman"))
    assert spec.name == "docker" and backend.name == "docker" and isinstance(backend, ContainerBackend)
    assert backend.engine is engines["docker"] and engines["docker"].calls == ["ping"]
    assert engines["podman"].calls == []


def test_auto_detection_falls_back_to_podman_and_closes_the_unreachable_one(engines):
    engines["docker"].reachable = False
    spec, backend = ContainerBackendConfig(stop_timeout=1).select_backend(registry("docker", "podman"))
    assert spec.name == "podman" and backend.engine is engines["podman"]
    assert engines["docker"].closed and not engines["podman"].closed
    assert isinstance(CONFIGS[-1], FakePodmanConfig) and CONFIGS[-1].stop_timeout == 1  # the settings carried over


def test_auto_detection_skips_an_engine_that_is_not_installed(engines):
    spec, _ = ContainerBackendConfig().select_backend(registry("podman"))
    assert spec.name == "podman"


def test_no_engine_answering_names_every_attempt_and_how_to_fix(engines):
    engines["docker"].reachable = engines["podman"].reachable = False
    with pytest.raises(BackendUnavailableError) as info:
        ContainerBackendConfig().select_backend(registry("docker", "podman"))
    message = str(info.value)
    assert "tried: docker: the docker engine is not reachable" in message
    assert "podman: the podman engine is not reachable" in message
    assert "container_host='unix:///path/to/socket'" in message and "LocalProcessBackendConfig()" in message
    assert engines["docker"].closed and engines["podman"].closed


def test_no_engine_installed_says_how_to_install(engines):
    expected = r"docker: no backend named 'docker'.*pip install 'trainer-core\[docker\]'"
    with pytest.raises(BackendUnavailableError, match=expected):
        ContainerBackendConfig().select_backend(registry())


@pytest.mark.parametrize("how", ["container_runtime", "prefer"])
def test_a_named_engine_is_the_only_one_tried(engines, how):
    named = how == "container_runtime"
    config = ContainerBackendConfig(container_runtime="podman") if named else ContainerBackendConfig()
    spec, _ = config.select_backend(registry("docker", "podman"), prefer=None if named else "podman")
    assert spec.name == "podman" and engines["docker"].calls == []


def test_a_named_engine_that_is_not_installed_is_not_found(engines):
    with pytest.raises(BackendNotFoundError, match="no backend named 'podman' is installed"):
        ContainerBackendConfig(container_runtime="podman").select_backend(registry("docker"))
    assert engines["docker"].calls == []


def test_a_named_engine_that_does_not_answer_is_not_replaced(engines):
    engines["podman"].reachable = False
    with pytest.raises(BackendUnavailableError, match=r"tried: podman: the podman engine is not reachable"):
        ContainerBackendConfig(container_runtime="podman").select_backend(registry("docker", "podman"))
    assert engines["docker"].calls == []
