"""Upstream ``kubeflow.trainer`` code runs on ours by changing imports: names, module paths, dataclass
conventions, error classes and the in-job API (issue 12)."""

from __future__ import annotations

import dataclasses
import http.server
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

import kubeflow_trainer
from kubeflow_trainer import (
    CustomTrainer,
    CustomTrainerContainer,
    DataCacheInitializer,
    HuggingFaceDatasetInitializer,
    Runtime,
    RuntimeKind,
    RuntimeTrainer,
    S3ModelInitializer,
    Step,
    TrainerType,
    TrainJobTemplate,
    errors,
    jobside,
    trainjob_status,
)
from kubeflow_trainer.tpu import get_tpu_num_nodes

UPSTREAM_TOP_LEVEL = [
    "BuiltinTrainer",
    "CustomTrainer",
    "CustomTrainerContainer",
    "DataCacheInitializer",
    "DataFormat",
    "DATASET_PATH",
    "DataType",
    "Event",
    "HuggingFaceDatasetInitializer",
    "HuggingFaceModelInitializer",
    "Initializer",
    "LoraConfig",
    "Loss",
    "MODEL_PATH",
    "Runtime",
    "RuntimeKind",
    "TorchTuneConfig",
    "TorchTuneInstructDataset",
    "RuntimeTrainer",
    "S3DatasetInitializer",
    "S3ModelInitializer",
    "TrainJobTemplate",
    "TrainerClient",
    "TrainerType",
    "LocalProcessBackendConfig",
    "ContainerBackendConfig",
    "KubernetesBackendConfig",
    "TrainingRuntimeSource",
    "get_tpu_num_nodes",
    "update_trainjob_status",
]
"""``kubeflow.trainer.__all__`` of kubeflow==0.5.0."""

BACKEND_CONFIGS = {
    "LocalProcessBackendConfig": ("kubeflow_trainer_local", "local"),
    "KubernetesBackendConfig": ("kubeflow_trainer_k8s", "k8s"),
    "ContainerBackendConfig": ("kubeflow_trainer_containers", "docker"),
    "TrainingRuntimeSource": ("kubeflow_trainer_containers", "docker"),
}


def train_fn() -> None:
    print("hello")


def _installed(name: str) -> bool:
    return name not in BACKEND_CONFIGS or importlib.util.find_spec(BACKEND_CONFIGS[name][0]) is not None


def test_every_upstream_top_level_name_is_listed():
    """Every upstream name is in __all__, except those whose backend distribution is not installed."""
    assert {n for n in UPSTREAM_TOP_LEVEL if _installed(n)} <= set(kubeflow_trainer.__all__)
    assert not {n for n in UPSTREAM_TOP_LEVEL if not _installed(n)} & set(kubeflow_trainer.__all__)


def test_star_import_works_with_any_set_of_backends():
    """Upstream's notebooks do ``from kubeflow.trainer import *``: it binds what is installed and never
    raises for a missing backend, which explicit imports still name with the install hint."""
    namespace: dict[str, object] = {}
    exec("from kubeflow_trainer import *", namespace)
    assert "TrainerClient" in namespace and "CustomTrainer" in namespace
    for name, (_, extra) in BACKEND_CONFIGS.items():
        if _installed(name):
            assert name in namespace
        else:
            assert name not in namespace
            with pytest.raises(errors.BackendNotInstalledError, match=rf"trainer-core\[{extra}\]"):
                getattr(kubeflow_trainer, name)


@pytest.mark.parametrize("name", [n for n in UPSTREAM_TOP_LEVEL if n not in BACKEND_CONFIGS])
def test_core_names_resolve(name):
    assert getattr(kubeflow_trainer, name) is not None


@pytest.mark.parametrize("name", sorted(BACKEND_CONFIGS))
def test_backend_configs_resolve_or_name_the_install(name):
    module, extra = BACKEND_CONFIGS[name]
    if importlib.util.find_spec(module) is not None:
        config = getattr(kubeflow_trainer, name)
        assert config.__module__.startswith(module)
        return
    with pytest.raises(ImportError) as info:
        getattr(kubeflow_trainer, name)
    assert isinstance(info.value, errors.BackendNotInstalledError)
    assert f"pip install 'trainer-core[{extra}]'" in str(info.value)


def test_import_stays_lazy_and_resolves_configs_on_use():
    code = (
        "import sys, kubeflow_trainer\n"
        "lazy = ('kubeflow_trainer_local', 'kubeflow_trainer_k8s', 'kubeflow_trainer_docker', "
        "'kubeflow_trainer_podman', 'kubeflow_trainer_containers', 'kubeflow_trainer.trainjob_status')\n"
        "print(sorted(m for m in sys.modules if m.startswith(lazy)))\n"
        "from kubeflow_trainer import TrainJobTemplate, update_trainjob_status\n"
        "print(update_trainjob_status.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "kubeflow_trainer.trainjob_status"


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        kubeflow_trainer.NoSuchThing  # noqa: B018
    assert not hasattr(kubeflow_trainer, "NoSuchThing")


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("kubeflow_trainer.types.types", ["CustomTrainer", "Runtime", "TrainJob", "TrainJobTemplate", "TORCH_TUNE"]),
        (
            "kubeflow_trainer.constants.constants",
            ["DATASET_INITIALIZER", "MODEL_INITIALIZER", "NODE", "TRAINJOB_COMPLETE"],
        ),
        ("kubeflow_trainer.backends.container.backend", ["ContainerBackend", "ContainerBackendConfig"]),
        ("kubeflow_trainer.backends.container.types", ["ContainerBackendConfig", "TrainingRuntimeSource"]),
        ("kubeflow_trainer.backends.kubernetes.utils", ["get_tpu_num_nodes", "update_trainjob_status"]),
        ("kubeflow_trainer.api.trainer_client", ["TrainerClient"]),
        ("kubeflow_trainer.options.kubernetes", ["RuntimePatch", "TrainingRuntimeSpecPatch", "PodSpecPatch", "Labels"]),
        ("kubeflow_trainer.options.common", ["Name"]),
    ],
)
def test_upstream_module_paths(module, names):
    loaded = importlib.import_module(module)
    containers_missing = importlib.util.find_spec("kubeflow_trainer_containers") is None
    for name in names:
        if module.startswith("kubeflow_trainer.backends.container.") and containers_missing:
            with pytest.raises(errors.BackendNotInstalledError, match=r"pip install 'trainer-core\[docker\]'"):
                getattr(loaded, name)
            continue
        assert getattr(loaded, name) is not None, name
    assert set(names) <= set(loaded.__all__)


def test_upstream_constants_values():
    from kubeflow_trainer.constants import constants

    assert constants.DATASET_INITIALIZER == "dataset-initializer"
    assert constants.MODEL_INITIALIZER == "model-initializer"
    assert constants.TRAINJOB_FAILED == "Failed"
    assert constants.DATASET_PATH == "/workspace/dataset"
    assert constants.TORCH_TUNE_COMMAND == ("tune", "run")


@pytest.mark.parametrize(
    ("module", "name", "dist"),
    [
        ("kubeflow_trainer.backends.localprocess.backend", "LocalProcessBackendConfig", "kubeflow_trainer_local"),
        ("kubeflow_trainer.backends.localprocess.types", "LocalProcessBackendConfig", "kubeflow_trainer_local"),
        ("kubeflow_trainer.backends.localprocess", "LocalProcessBackendConfig", "kubeflow_trainer_local"),
        ("kubeflow_trainer.backends.kubernetes.backend", "KubernetesBackendConfig", "kubeflow_trainer_k8s"),
    ],
)
def test_backend_alias_modules_are_lazy(module, name, dist):
    loaded = importlib.import_module(module)
    if importlib.util.find_spec(dist) is None:
        with pytest.raises(errors.BackendNotInstalledError):
            getattr(loaded, name)
    else:
        assert getattr(loaded, name) is getattr(kubeflow_trainer, name)


# Dataclass conventions ---------------------------------------------------------------------------------
def test_positional_construction_binds_upstream_field_order():
    trainer = CustomTrainer(train_fn, None, "img:1")
    assert (trainer.func, trainer.image) == (train_fn, "img:1")
    runtime = Runtime("rt", RuntimeTrainer(TrainerType.CUSTOM_TRAINER, "torch", "img"), RuntimeKind.TRAINING_RUNTIME)
    assert (runtime.name, runtime.trainer.framework, runtime.kind) == ("rt", "torch", RuntimeKind.TRAINING_RUNTIME)
    assert CustomTrainerContainer("img", 2).num_nodes == 2
    assert HuggingFaceDatasetInitializer("hf://org/ds", ["*.bin"], "tok").access_token == "tok"
    assert S3ModelInitializer("s3://b/p", None, "http://minio").endpoint == "http://minio"
    cache = DataCacheInitializer("cache://schema/table", "s3://meta", 2)
    assert (cache.metadata_loc, cache.num_data_nodes) == ("s3://meta", 2)
    assert Step("node-0", "Running", "pod").pod_name == "pod"


def test_positional_construction_still_validates():
    with pytest.raises(ValueError, match="storage_uri"):
        HuggingFaceDatasetInitializer("s3://not-hf")
    with pytest.raises(TypeError, match="multiple values for argument 'func'"):
        CustomTrainer(train_fn, func=train_fn)
    with pytest.raises(TypeError, match="at most 3 positional"):
        TrainJobTemplate(CustomTrainer(train_fn), "rt", None, "extra")  # type: ignore[call-arg]


def test_dataclasses_functions_work_on_the_types():
    trainer = CustomTrainer(train_fn, {}, num_nodes=2)
    assert dataclasses.is_dataclass(trainer)
    as_dict = dataclasses.asdict(trainer)
    assert as_dict["func"] is train_fn and as_dict["num_nodes"] == 2 and as_dict["func_args"] == {}
    assert [f.name for f in dataclasses.fields(CustomTrainer)][:8] == [
        "func", "func_args", "image", "packages_to_install", "pip_index_urls", "num_nodes", "resources_per_node", "env"
    ]  # fmt: skip
    assert dataclasses.replace(trainer, num_nodes=3).num_nodes == 3
    runtime = Runtime("rt", RuntimeTrainer(TrainerType.CUSTOM_TRAINER, "torch"))
    assert dataclasses.asdict(runtime)["trainer"]["framework"] == "torch"
    # each subclass has its own fields, whichever class is asked first
    from kubeflow_trainer.types import HuggingFaceModelInitializer, _HuggingFace

    assert "ignore_patterns" not in {f.name for f in dataclasses.fields(_HuggingFace)}
    assert "ignore_patterns" in {f.name for f in dataclasses.fields(HuggingFaceModelInitializer)}


def test_trainjob_template_unpacks_into_train_arguments():
    template = TrainJobTemplate(trainer=CustomTrainer(train_fn), runtime="torch-distributed")
    assert dict(**template) == {"trainer": template.trainer, "runtime": "torch-distributed", "initializer": None}


# Errors ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        errors.JobNotFoundError("j", backend="local"),
        errors.RuntimeNotFoundError("r", ["torch-distributed"]),
        errors.StepNotFoundError("j", "node-9", ["node-0"]),
    ],
)
def test_not_found_is_caught_as_upstream_catches_it(error):
    for upstream_catch in (ValueError, RuntimeError, LookupError, errors.NotFoundError):
        with pytest.raises(upstream_catch):
            raise error


def test_taken_name_and_unreachable_backend_are_runtime_errors():
    assert isinstance(errors.AlreadyExistsError("j"), RuntimeError)
    assert isinstance(errors.BackendUnavailableError("down"), RuntimeError)
    assert isinstance(errors.BackendUnavailableError("down"), ConnectionError)


# get_tpu_num_nodes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [((1, "2x2"), 1), ((2, "2x4"), 4), ((1, "2x2x4"), 4), ((3, "4x4", 8), 6), ((2, "1x1"), 2), ((1, "2X2"), 1)],
)
def test_tpu_num_nodes(args, expected):
    assert get_tpu_num_nodes(*args) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, "2x2"), "num_slices must be positive"),
        ((1, "2x2", 0), "chips_per_host must be positive"),
        ((1, ""), "must be specified"),
        ((1, "2xa"), "Invalid topology format"),
        ((1, "2"), "exactly 2 or 3 dimensions"),
        ((1, "2x0"), "must be positive"),
        ((1, "2x3", 4), "cleanly divisible"),
    ],
)
def test_tpu_num_nodes_refuses_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        get_tpu_num_nodes(*args)


# update_trainjob_status --------------------------------------------------------------------------------
@pytest.fixture
def no_channel(monkeypatch) -> None:
    for env in (trainjob_status.SERVER_URL_ENV, trainjob_status.STATUS_FILE_ENV):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setattr(trainjob_status, "_last_post", float("-inf"))
    monkeypatch.setattr(trainjob_status, "_token", None)


def test_outside_a_job_it_returns_false(no_channel):
    assert kubeflow_trainer.update_trainjob_status(progress_percent=10) is False


def test_status_file_channel_writes_upstreams_document(no_channel, monkeypatch, tmp_path):
    path = tmp_path / "ws" / ".kft" / "trainer-status.json"
    monkeypatch.setenv(trainjob_status.STATUS_FILE_ENV, str(path))
    update = kubeflow_trainer.update_trainjob_status
    assert update(progress_percent=150, estimated_remaining_seconds=-3, metrics={"loss": 0.25, "step": 7}) is True
    doc = json.loads(path.read_text())["trainerStatus"]
    assert doc["progressPercentage"] == 100 and doc["estimatedRemainingSeconds"] == 0
    assert doc["metrics"] == [{"name": "loss", "value": "0.25"}, {"name": "step", "value": "7"}]
    assert update(progress_percent=40) is True  # files are not throttled: the latest call wins
    status = trainjob_status.trainer_status_from_json(path.read_bytes())
    assert status is not None and status.progress_percentage == 40 and status.metrics == {}
    assert status.last_updated_time is not None
    assert [p.name for p in path.parent.iterdir()] == ["trainer-status.json"]  # no temporary files left


def test_status_file_channel_never_raises(no_channel, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(trainjob_status.STATUS_FILE_ENV, str(blocker / "sub" / "status.json"))
    assert kubeflow_trainer.update_trainjob_status(progress_percent=1) is False


def test_many_metrics_are_truncated_to_upstreams_limit():
    doc = trainjob_status.status_document(None, None, {f"m{i}": i for i in range(300)})
    assert len(doc["trainerStatus"]["metrics"]) == trainjob_status.MAX_METRICS


class _StatusServer(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, object]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.headers["Authorization"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[str]:
    _StatusServer.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatusServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/status"
    server.shutdown()


def test_server_channel_posts_with_the_token_and_throttles(no_channel, monkeypatch, tmp_path, status_server):
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    monkeypatch.setenv(trainjob_status.SERVER_URL_ENV, status_server)
    monkeypatch.setenv(trainjob_status.SERVER_TOKEN_ENV, str(token))
    assert kubeflow_trainer.update_trainjob_status(progress_percent=30, metrics={"loss": 1.5}) is True
    assert kubeflow_trainer.update_trainjob_status(progress_percent=31) is False  # within upstream's 5 s
    assert len(_StatusServer.received) == 1
    auth, body = _StatusServer.received[0]
    assert auth == "Bearer secret-token"
    assert body["trainerStatus"]["progressPercentage"] == 30  # type: ignore[index]
    assert body["trainerStatus"]["metrics"] == [{"name": "loss", "value": "1.5"}]  # type: ignore[index]


def test_server_channel_without_a_token_returns_false(no_channel, monkeypatch, status_server):
    monkeypatch.setenv(trainjob_status.SERVER_URL_ENV, status_server)
    assert kubeflow_trainer.update_trainjob_status(progress_percent=30) is False
    assert _StatusServer.received == []


# The stand-in shipped into jobs ------------------------------------------------------------------------
def _run_in_job_dir(tmp_path, *python_flags: str) -> list[str]:
    for rel, content in jobside.stand_in_files().items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    status = tmp_path / ".kft" / "trainer-status.json"
    (tmp_path / "train.py").write_text(
        "import kubeflow_trainer\n"
        "from kubeflow_trainer import get_tpu_num_nodes, update_trainjob_status\n"
        "print(kubeflow_trainer.__file__)\n"
        "print(hasattr(kubeflow_trainer, 'TrainerClient'))\n"
        "print(update_trainjob_status(progress_percent=5), get_tpu_num_nodes(1, '2x4'))\n"
    )
    env = {**os.environ, trainjob_status.STATUS_FILE_ENV: str(status)}
    result = subprocess.run(
        [sys.executable, *python_flags, str(tmp_path / "train.py")],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(status.read_text())["trainerStatus"]["progressPercentage"] == 5
    return result.stdout.split("\n")


def test_stand_in_serves_jobs_without_trainer_core(tmp_path):
    out = _run_in_job_dir(tmp_path, "-S")  # no site-packages: trainer-core is not importable
    assert out[0] == str(tmp_path / "kubeflow_trainer" / "__init__.py")
    assert out[1:3] == ["False", "True 2"]


def test_stand_in_defers_to_an_installed_trainer_core(tmp_path):
    out = _run_in_job_dir(tmp_path)
    assert out[0] == kubeflow_trainer.__file__
    assert out[1:3] == ["True", "True 2"]


def test_signatures_show_upstreams_parameters_first():
    import inspect

    params = inspect.signature(CustomTrainer).parameters
    assert list(params) == [
        "func", "func_args", "image", "packages_to_install", "pip_index_urls", "num_nodes", "resources_per_node", "env",
        "workspace",
    ]  # fmt: skip
    assert params["workspace"].kind is inspect.Parameter.KEYWORD_ONLY  # ours, after upstream's
    assert repr(params["pip_index_urls"].default) == "<factory>"  # as a dataclass shows a default factory
    hf = inspect.signature(HuggingFaceDatasetInitializer).parameters
    assert list(hf)[:3] == ["storage_uri", "ignore_patterns", "access_token"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(hf.values())[3:])
    assert list(inspect.signature(Runtime).parameters)[:4] == ["name", "trainer", "kind", "pretrained_model"]
    wait = inspect.signature(kubeflow_trainer.TrainerClient.wait_for_job_status).parameters
    assert wait["status"].default == {"Complete"}
