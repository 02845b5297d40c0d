"""ClientEngine's own logic (error translation, not-found tolerance, create kwargs, logs) on a small stand-in for
a docker-py-like client. A unit test of our code in addition to the real engines' suites (the Docker and Podman
distributions run the same methods against the real engines)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from pydantic import SecretStr

from kubeflow_trainer.errors import BackendError, BackendUnavailableError
from kubeflow_trainer_containers.client_engine import ClientEngine, translate_errors
from kubeflow_trainer_containers.engine import ContainerInfo, EngineEvent, LayerProgress, split_image
from kubeflow_trainer_containers.request import ContainerSpec


class SDKError(Exception):
    """The SDK's base error (docker.errors.DockerException)."""


class APIError(SDKError):
    """An answer refusing a call; has ``explanation`` like docker-py's and podman-py's."""

    def __init__(self, message: str, explanation: str | None = None) -> None:
        super().__init__(message)
        self.explanation = explanation


class NotFound(APIError):
    pass


class Unreachable(Exception):
    """A transport error (requests' ConnectionError)."""


class Managed:
    """One SDK object (container, network, volume): records what was called on it."""

    def __init__(self, client: StandInClient, kind: str, name: str) -> None:
        self.client, self.kind, self.name, self.id = client, kind, name, f"id-{name}"

    def _call(self, method: str, **kwargs: Any) -> None:
        self.client.record(f"{self.kind}.{method}", self.name, kwargs)

    def start(self) -> None:
        self._call("start")

    def stop(self, **kwargs: Any) -> None:
        self._call("stop", **kwargs)

    def remove(self, **kwargs: Any) -> None:
        self._call("remove", **kwargs)

    def logs(self, **kwargs: Any) -> Any:
        self._call("logs", **kwargs)
        return self.client.log_output


class Collection:
    """``client.containers`` / ``networks`` / ``volumes`` / ``images``."""

    def __init__(self, client: StandInClient, kind: str) -> None:
        self.client, self.kind = client, kind

    def get(self, name: str) -> Managed:
        self.client.record(f"{self.kind}.get", name, {})
        if name in self.client.missing:
            raise NotFound(f"{self.kind} {name} not found", explanation=f"no such {self.kind}: {name}")
        return Managed(self.client, self.kind, name)

    def create(self, *args: Any, **kwargs: Any) -> Managed:
        name = args[0] if args else kwargs.get("name", "")
        self.client.record(f"{self.kind}.create", name, kwargs)
        return Managed(self.client, self.kind, kwargs.get("name", name))

    def pull(self, image: str) -> None:
        self.client.record(f"{self.kind}.pull", image, {})


class LowLevelAPI:
    """``client.api``: the pull stream (docker-py's ``APIClient.pull(stream=True, decode=True)``)."""

    def __init__(self, client: StandInClient) -> None:
        self.client = client

    def pull(self, repo: str, tag: str, stream: bool, decode: bool) -> Iterator[dict[str, Any]]:
        assert stream and decode
        self.client.record("images.pull", f"{repo}:{tag}", {})
        return iter(self.client.pull_reports)


class StandInClient:
    """A docker-py-shaped client: calls are recorded; ``fail_with`` makes every call raise that error."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.missing: set[str] = set()
        self.fail_with: Exception | None = None
        self.log_output: Any = b""
        self.closed = False
        self.containers = Collection(self, "containers")
        self.networks = Collection(self, "networks")
        self.volumes = Collection(self, "volumes")
        self.images = Collection(self, "images")
        self.api = LowLevelAPI(self)
        self.pull_reports: list[dict[str, Any]] = []

    def record(self, call: str, name: str, kwargs: dict[str, Any]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.calls.append((call, name, kwargs))

    def close(self) -> None:
        self.closed = True


class StandInEngine(ClientEngine):
    """The smallest engine on the stand-in client: what a real engine distribution writes beyond ClientEngine."""

    name = "standin"
    display_name = "the stand-in engine"
    unreachable_errors = (Unreachable,)
    api_error = APIError
    sdk_error = SDKError
    not_found = NotFound
    remove_network_options = {"force": True}

    def __init__(self) -> None:
        self._client: StandInClient | None = StandInClient()

    @property
    def client(self) -> StandInClient:
        assert self._client is not None, "client used after close()"
        return self._client

    def unavailable(self, exc: Exception) -> BackendUnavailableError:
        return BackendUnavailableError(f"cannot reach the stand-in engine: {exc}. Start it.")

    @translate_errors
    def ping(self) -> None:
        self.client.record("ping", "", {})

    def image_exists(self, image: str) -> bool:
        return True

    def create_network(self, name: str, labels: dict[str, str]) -> None:
        self.client.networks.create(name, labels=labels)

    def put_files(self, container: str, directory: str, files: dict[str, str]) -> None:
        raise NotImplementedError

    def list_containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        return []

    def list_networks(self, labels: dict[str, str]) -> list[str]:
        return []

    def list_volumes(self, labels: dict[str, str]) -> list[str]:
        return []

    def events(self, labels: dict[str, str], since: datetime, until: datetime) -> list[EngineEvent]:
        return []


@pytest.fixture
def engine() -> StandInEngine:
    return StandInEngine()


def spec(**changes: Any) -> ContainerSpec:
    fields: dict[str, Any] = {
        "name": "job-node-0",
        "image": "img:1",
        "command": ["python", "-c", "print(1)"],
        "labels": {"job": "job"},
        "env": {"A": "1"},
        "network": "kft-job",
        "hostname": "job-node-0",
        "volumes": {"kft-job": "/workspace"},
        "secret_env": {"TOKEN": SecretStr("s3cret")},
    }
    return ContainerSpec(**{**fields, **changes})


# Calls reach the client ---------------------------------------------------------------------------------
def test_lifecycle_calls_reach_the_client(engine):
    engine.start_container("c1")
    engine.stop_container("c1", 2.7)
    engine.remove_container("c1")
    engine.remove_network("n1")
    engine.remove_volume("v1")
    engine.create_volume("v2", {"l": "x"})
    engine.pull_image("img:2")
    calls = [(c, n, k) for c, n, k in engine.client.calls if not c.endswith(".get")]
    assert calls == [
        ("containers.start", "c1", {}),
        ("containers.stop", "c1", {"timeout": 2}),
        ("containers.remove", "c1", {"force": True}),
        ("networks.remove", "n1", {"force": True}),
        ("volumes.remove", "v1", {"force": True}),
        ("volumes.create", "v2", {"name": "v2", "labels": {"l": "x"}}),
        ("images.pull", "img:2", {}),
    ]


def test_create_container_sends_the_native_request_with_the_secret(engine):
    container_id = engine.create_container(spec())
    (call,) = [c for c in engine.client.calls if c[0] == "containers.create"]
    assert call[1] == "img:1" and container_id == "id-job-node-0"
    assert "image" not in call[2] and call[2]["name"] == "job-node-0"
    assert call[2]["env"] == {"A": "1", "TOKEN": "s3cret"}
    assert engine.native_request(spec())["env"]["TOKEN"] == "<secret>"  # what a dry run shows


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.stop_container("gone", 1),
        lambda e: e.remove_container("gone"),
        lambda e: e.remove_network("gone"),
        lambda e: e.remove_volume("gone"),
    ],
)
def test_stop_and_remove_tolerate_missing_objects(engine, call):
    engine.client.missing.add("gone")
    call(engine)
    assert [c[0] for c in engine.client.calls if c[1] == "gone"] and all(
        c[0].endswith(".get") for c in engine.client.calls
    )


def test_start_of_a_missing_container_is_refused_with_the_engines_explanation(engine):
    engine.client.missing.add("gone")
    with pytest.raises(BackendError, match="the stand-in engine refused start_container: no such containers: gone"):
        engine.start_container("gone")


# Error translation --------------------------------------------------------------------------------------
def test_unreachable_engine_becomes_backend_unavailable(engine):
    engine.client.fail_with = Unreachable("connection refused")
    with pytest.raises(BackendUnavailableError, match="cannot reach the stand-in engine: connection refused"):
        engine.start_container("c1")
    with pytest.raises(BackendUnavailableError, match="connection refused"):
        engine.ping()


def test_other_sdk_errors_mean_the_client_could_not_talk_to_the_engine(engine):
    engine.client.fail_with = SDKError("bad TLS config")
    with pytest.raises(BackendUnavailableError, match="bad TLS config"):
        engine.create_volume("v", {})


def test_refusal_without_explanation_shows_the_error(engine):
    engine.client.fail_with = APIError("409 conflict")
    with pytest.raises(BackendError, match="refused create_container: 409 conflict") as info:
        engine.create_container(spec())
    assert isinstance(info.value.__cause__, APIError)


def test_pull_refusal_says_why_the_image_could_not_be_pulled(engine):
    engine.client.fail_with = APIError("500", explanation="manifest unknown")
    with pytest.raises(BackendError, match=r"^manifest unknown$"):
        engine.pull_image("img:missing")


def test_pull_reports_become_layer_progress_and_an_error_report_fails_the_pull(engine):
    engine.client.pull_reports = [
        {"status": "Pulling from kft/pull", "id": "t1"},
        {"status": "Already exists", "progressDetail": {}, "id": "aaa"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbb"},
        {"status": "Downloading", "progressDetail": {"current": 10, "total": 40}, "id": "bbb"},
        {"status": "Extracting", "progressDetail": {"current": 99, "total": 99}, "id": "bbb"},
        {"status": "Pull complete", "progressDetail": {}, "id": "bbb"},
        {"status": "Digest: sha256:0"},
    ]
    seen: list[LayerProgress] = []
    engine.pull_image("127.0.0.1:5000/kft/pull:t1", seen.append)
    assert ("images.pull", "127.0.0.1:5000/kft/pull:t1", {}) in engine.client.calls
    assert [(x.layer, x.state, x.current, x.total) for x in seen] == [
        ("aaa", "present", None, None),
        ("bbb", "waiting", None, None),
        ("bbb", "downloading", 10, 40),
        ("bbb", "extracting", None, None),  # extracted bytes are not downloaded bytes
        ("bbb", "done", None, None),
    ]
    engine.client.pull_reports = [{"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"}]
    with pytest.raises(BackendError, match=r"^manifest unknown$"):
        engine.pull_image("img:3")


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("127.0.0.1:5000/a/b:v1", ("127.0.0.1:5000/a/b", "v1")),
        ("127.0.0.1:5000/a/b", ("127.0.0.1:5000/a/b", "latest")),
        ("busybox", ("busybox", "latest")),
        ("repo/img@sha256:abc", ("repo/img", "sha256:abc")),
    ],
)
def test_split_image(image, parts):
    assert split_image(image) == parts


def test_errors_that_are_not_the_engines_pass_unchanged(engine):
    engine.client.fail_with = KeyError("bug")
    with pytest.raises(KeyError, match="bug"):
        engine.start_container("c1")


def test_sdk_errors_pass_unchanged_through_translation(engine):
    engine.client.fail_with = BackendError("already typed")
    with pytest.raises(BackendError, match=r"^already typed$"):
        engine.remove_volume("v")


def test_translate_errors_keeps_the_methods_name(engine):
    assert ClientEngine.start_container.__name__ == "start_container"
    assert engine.translate(ValueError("x"), "op") is None


# Logs ---------------------------------------------------------------------------------------------------
def test_logs_without_follow_are_one_chunk(engine):
    engine.client.log_output = b"hello\n"
    assert list(engine.logs("c1", follow=False)) == [b"hello\n"]
    (call,) = [c for c in engine.client.calls if c[0] == "containers.logs"]
    assert call[2] == {"stdout": True, "stderr": True}


def test_logs_without_follow_join_a_chunked_answer(engine):
    engine.client.log_output = [b"a", b"b"]
    assert list(engine.logs("c1", follow=False)) == [b"ab"]


def test_followed_logs_stream_chunks_and_single_bytes(engine):
    def stream() -> Iterator[Any]:
        yield b"line 1\n"
        yield 65  # some SDK versions yield ints when iterating raw bytes

    engine.client.log_output = stream()
    assert list(engine.logs("c1", follow=True)) == [b"line 1\n", b"A"]
    (call,) = [c for c in engine.client.calls if c[0] == "containers.logs"]
    assert call[2] == {"stdout": True, "stderr": True, "stream": True, "follow": True}


def test_logs_of_a_missing_container_are_empty(engine):
    engine.client.missing.add("gone")
    assert list(engine.logs("gone", follow=True)) == []


@pytest.mark.parametrize("error", [Unreachable("reset by peer"), SDKError("broken pipe")])
def test_logs_of_an_unreachable_engine_raise_backend_unavailable(engine, error):
    engine.client.fail_with = error
    with pytest.raises(BackendUnavailableError, match="cannot reach the stand-in engine"):
        list(engine.logs("c1", follow=False))


def test_close_releases_the_client_once(engine):
    client = engine.client
    engine.close()
    engine.close()
    assert client.closed and engine._client is None
