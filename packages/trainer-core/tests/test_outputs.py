"""``get_job_outputs``, the download routine and ``DataDirs``: bad input is a typed error with nothing created,
and a download that is refused or fails halfway leaves the destination as it was."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kubeflow_trainer import (
    BackendError,
    Capability,
    CustomTrainer,
    DataDirs,
    InvalidRequestError,
    JobNotFoundError,
    TrainerClient,
    UnsupportedFeatureError,
)
from kubeflow_trainer.backend import Backend, BackendConfig, BackendSpec
from kubeflow_trainer.outputs import (
    STAGING_PREFIX,
    OutputFile,
    data_dir_env,
    download,
    iter_directory,
    iter_tar_stream,
    normalize_sub_path,
)
from kubeflow_trainer.plan import build_plan
from kubeflow_trainer.runtimes import builtin_runtimes


class _Config(BackendConfig):
    pass


class _Backend(Backend[Any]):
    """Jobs are names; outputs are a dict (relative path -> bytes), optionally failing after some files."""

    def __init__(self, outputs: dict[str, bytes], fail_after: int | None = None, bad_path: str | None = None) -> None:
        super().__init__(_Config())
        self.name = "mem"
        self.outputs = outputs
        self.fail_after = fail_after
        self.bad_path = bad_path
        self.jobs = {"done"}

    def open_outputs(self, name: str, path: str = "") -> Iterator[OutputFile]:
        self.get_job(name)
        return self._files(path)

    def _files(self, path: str) -> Iterator[OutputFile]:
        if self.bad_path:
            yield OutputFile(self.bad_path, io.BytesIO(b"evil"))
        for i, (rel, data) in enumerate(sorted(self.outputs.items())):
            if self.fail_after is not None and i >= self.fail_after:
                raise BackendError("the engine went away mid-download")
            if not path or rel == path or rel.startswith(path + "/"):
                yield OutputFile(rel, io.BytesIO(data), len(data))

    def render(self, plan: Any) -> Any:
        return {}

    def submit(self, request: Any) -> None:
        pass

    def list_jobs(self, runtime: Any = None) -> list[Any]:
        return []

    def get_job(self, name: str) -> Any:
        if name not in self.jobs:
            raise JobNotFoundError(name, self.name)
        return name

    def get_job_logs(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[str]:
        return iter(())

    def get_job_events(self, name: str) -> list[Any]:
        return []

    def delete_job(self, name: str) -> None:
        self.jobs.discard(name)


def client_for(backend: _Backend, capabilities: set[Capability] | None = None) -> TrainerClient:
    """A client on an in-memory backend (no registry: this tests the client's own logic)."""
    client = TrainerClient.__new__(TrainerClient)
    client._backend = backend
    client._spec = BackendSpec(
        name="mem",
        config_class=_Config,
        factory=lambda c: backend,
        capabilities=frozenset({Capability.OUTPUTS} if capabilities is None else capabilities),
    )
    return client


FILES = {"ckpt/model.bin": os.urandom(3000), "metrics.json": b"{}", ".hidden/x": b"x"}


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_fetches_every_file_at_its_relative_path(tmp_path: Path) -> None:
    paths = client_for(_Backend(FILES)).get_job_outputs("done", tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in paths] == sorted(FILES)
    assert tree(tmp_path / "out") == FILES


def test_path_filter_and_overwrite_rule(tmp_path: Path) -> None:
    client = client_for(_Backend(FILES))
    assert client.get_job_outputs("done", tmp_path, path="ckpt/") == [tmp_path / "ckpt" / "model.bin"]
    (tmp_path / "ckpt" / "model.bin").write_bytes(b"mine")
    (tmp_path / "notes.txt").write_bytes(b"keep")
    with pytest.raises(InvalidRequestError, match="overwrite=True"):
        client.get_job_outputs("done", tmp_path)
    assert tree(tmp_path) == {"ckpt/model.bin": b"mine", "notes.txt": b"keep"}  # nothing written, no staging
    client.get_job_outputs("done", tmp_path, overwrite=True)
    assert tree(tmp_path) == {**FILES, "notes.txt": b"keep"}
    with pytest.raises(InvalidRequestError, match="no file under 'nope'"):
        client.get_job_outputs("done", tmp_path / "new", path="nope")
    assert not (tmp_path / "new").exists()


def test_a_failure_halfway_leaves_dest_as_it_was(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="mid-download"):
        client_for(_Backend(FILES, fail_after=2)).get_job_outputs("done", tmp_path / "created")
    assert not (tmp_path / "created").exists()
    (tmp_path / "existing").mkdir()
    with pytest.raises(BackendError):
        client_for(_Backend(FILES, fail_after=2)).get_job_outputs("done", tmp_path / "existing")
    assert list((tmp_path / "existing").iterdir()) == []


@pytest.mark.parametrize("bad", ["../escape", "/etc/passwd", "a/../../b", "."])
def test_a_backend_yielding_an_unsafe_path_writes_nothing(tmp_path: Path, bad: str) -> None:
    with pytest.raises(BackendError, match="unsafe path"):
        client_for(_Backend(FILES, bad_path=bad)).get_job_outputs("done", tmp_path / "d")
    assert not (tmp_path / "d").exists() and not (tmp_path / "escape").exists()


def test_a_directory_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").mkdir()
    with pytest.raises(InvalidRequestError, match="is a directory"):
        client_for(_Backend(FILES)).get_job_outputs("done", tmp_path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": ""}, InvalidRequestError, "job name"),
        ({"name": 3}, InvalidRequestError, "job name"),
        ({"dest": ""}, InvalidRequestError, "dest must be"),
        ({"dest": 42}, InvalidRequestError, "dest must be"),
        ({"path": "/abs/file"}, InvalidRequestError, "absolute"),
        ({"path": "../up"}, InvalidRequestError, "leaves the job's output directory"),
        ({"path": 7}, InvalidRequestError, "relative path"),
        ({"overwrite": "yes"}, InvalidRequestError, "overwrite must be"),
        ({"name": "unknown"}, JobNotFoundError, "unknown"),
    ],
)
def test_bad_input_is_a_typed_error_and_creates_nothing(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args = {"name": "done", "dest": tmp_path / "dest", **kwargs}
    with pytest.raises(error, match=match):
        client_for(_Backend(FILES)).get_job_outputs(**args)
    assert list(tmp_path.iterdir()) == []


def test_dest_that_is_a_file_or_under_a_missing_parent_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    client = client_for(_Backend(FILES))
    with pytest.raises(InvalidRequestError, match="not a directory"):
        client.get_job_outputs("done", tmp_path / "file")
    with pytest.raises(InvalidRequestError, match="does not exist"):
        client.get_job_outputs("done", tmp_path / "no" / "such" / "dir")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_a_backend_without_outputs_refuses_before_anything(tmp_path: Path) -> None:
    client = client_for(_Backend(FILES), capabilities=set())
    with pytest.raises(UnsupportedFeatureError, match="does not keep job outputs") as info:
        client.get_job_outputs("done", tmp_path / "dest")
    assert info.value.missing == ("outputs",)
    assert not (tmp_path / "dest").exists()


def test_the_default_backend_method_refuses() -> None:
    backend = _Backend({})
    with pytest.raises(UnsupportedFeatureError):
        Backend.open_outputs(backend, "done")


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, ""), ("", ""), (".", ""), ("ckpt/", "ckpt"), ("a/./b", "a/b"), ("a/../b", "b"), (Path("x/y"), "x/y")],
)
def test_sub_paths_are_normalised(given: Any, expected: str) -> None:
    assert normalize_sub_path(given) == expected


def _tar(names: dict[str, bytes | None]) -> Iterator[bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        for name, data in names.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif data == b"->":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return iter([raw[i : i + 100] for i in range(0, len(raw), 100)])


def _read(files: Iterator[OutputFile]) -> dict[str, bytes]:
    return {f.path: f.reader.read() for f in files}


def test_tar_streams_of_both_engines_are_read_member_by_member() -> None:
    docker_root = {"kft-outputs": None, "kft-outputs/.h/x": b"1", "kft-outputs/ckpt/m": b"2", "kft-outputs/l": b"->"}
    assert _read(iter_tar_stream(_tar(docker_root), "")) == {".h/x": b"1", "ckpt/m": b"2"}  # the symlink skipped
    podman_root = {"": None, "/.h/x": b"1", "/ckpt/m": b"2"}
    assert _read(iter_tar_stream(_tar(podman_root), "")) == {".h/x": b"1", "ckpt/m": b"2"}
    assert _read(iter_tar_stream(_tar({"ckpt": None, "ckpt/m": b"2"}), "a/ckpt")) == {"a/ckpt/m": b"2"}
    assert _read(iter_tar_stream(_tar({"m": b"2"}), "a/ckpt/m")) == {"a/ckpt/m": b"2"}


def test_iter_directory_never_follows_links_out(tmp_path: Path) -> None:
    (tmp_path / "out" / "d").mkdir(parents=True)
    (tmp_path / "out" / "d" / "f").write_bytes(b"f")
    (tmp_path / "secret").write_bytes(b"s")
    (tmp_path / "out" / "link").symlink_to(tmp_path / "secret")
    (tmp_path / "out" / "dlink").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(tmp_path / "out" / "fifo")
    assert _read(iter_directory(str(tmp_path / "out"), "")) == {"d/f": b"f"}
    assert _read(iter_directory(str(tmp_path / "out"), "d/f")) == {"d/f": b"f"}
    assert _read(iter_directory(str(tmp_path / "out"), "link")) == {}
    assert _read(iter_directory(str(tmp_path / "out"), "missing")) == {}


def test_download_moves_files_only_when_all_arrived(tmp_path: Path) -> None:
    def files() -> Iterator[OutputFile]:
        yield OutputFile("a", io.BytesIO(b"a"))
        assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(STAGING_PREFIX)] == []
        yield OutputFile("b/c", io.BytesIO(b"c"))

    assert download(files(), tmp_path, sub_path="", overwrite=False) == [tmp_path / "a", tmp_path / "b" / "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


# DataDirs ---------------------------------------------------------------------------------------------
def _echo() -> None:
    print("hi")


def test_data_dirs_are_validated_before_anything(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ValidationError, match="does not exist"):
        DataDirs({"data": tmp_path / "missing"})
    with pytest.raises(ValidationError, match="is not a directory"):
        DataDirs({"data": tmp_path / "file"})
    with pytest.raises(ValidationError, match="lower-case letters"):
        DataDirs({"Bad-Name": tmp_path})
    with pytest.raises(ValidationError, match="at least one"):
        DataDirs({})
    with pytest.raises(ValidationError):
        DataDirs({"data": 3})


def test_data_dirs_reach_the_plan_resolved_and_need_the_capability(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ds").mkdir()
    option = DataDirs({"imagenet": "ds"})
    plan = build_plan(
        backend="x",
        runtime=next(r for r in builtin_runtimes() if r.name == "torch-distributed"),
        trainer=CustomTrainer(func=_echo),
        initializer=None,
        options=[option],
    )
    assert plan.data_dirs == {"imagenet": str(tmp_path / "ds")}
    assert Capability.DATA_DIRS in plan.required_capabilities()
    assert data_dir_env("imagenet") == "KUBEFLOW_TRAINER_DATA_DIR_IMAGENET"
