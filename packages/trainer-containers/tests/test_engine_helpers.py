"""The helpers both engines use: engine timestamps, inspect parsing, tar archives, label filters."""

from __future__ import annotations

import io
import tarfile
from datetime import datetime, timedelta, timezone

import pytest

from kubeflow_trainer_containers.engine import (
    demux_frames,
    engine_time,
    info_from_inspect,
    info_from_summary,
    label_filters,
    parse_time,
    tar_files,
    untar_file,
)

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-04T05:06:07.123456789Z", datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)),
        ("2025-03-04T05:06:07Z", datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2025-03-04T05:06:07", datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)),
        (
            "2025-03-04T05:06:07.5+02:00",
            datetime(2025, 3, 4, 5, 6, 7, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_rfc3339_with_nanoseconds_and_zones(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", [None, "", "0001-01-01T00:00:00Z", "yesterday"])
def test_zero_missing_or_unparsable_times_are_none(text):
    assert parse_time(text) is None


def test_engine_time_reads_text_and_epoch_seconds():
    assert engine_time("2025-01-02T03:04:05Z") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert engine_time(1735787045) == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert engine_time(0) is None and engine_time(-1) is None
    assert engine_time(True) is None and engine_time(None) is None


def test_info_from_an_inspect_result():
    attrs = {
        "Created": "2025-01-02T03:04:05.1Z",
        "State": {
            "Status": "exited",
            "ExitCode": 3,
            "StartedAt": "2025-01-02T03:04:06Z",
            "FinishedAt": "2025-01-02T03:04:09Z",
            "Error": "oom",
        },
    }
    info = info_from_inspect("abc", "job-node-0", {"k": "v"}, attrs)
    assert (info.id, info.name, info.labels) == ("abc", "job-node-0", {"k": "v"})
    assert (info.state, info.exit_code) == ("exited", 3)
    assert info.created == datetime(2025, 1, 2, 3, 4, 5, 100000, tzinfo=UTC)
    assert info.started_at == datetime(2025, 1, 2, 3, 4, 6, tzinfo=UTC)
    assert info.finished_at == datetime(2025, 1, 2, 3, 4, 9, tzinfo=UTC)
    assert info.error == "oom"


def test_info_from_a_sparse_inspect_result():
    before = datetime.now(UTC)
    info = info_from_inspect("abc", "c", {}, {"State": {"StartedAt": "0001-01-01T00:00:00Z", "Error": ""}})
    assert info.state == "created" and info.exit_code is None and info.created >= before
    assert info.started_at is None and info.finished_at is None and info.error is None


def test_tar_files_have_their_directories_and_contents():
    data = tar_files({"a/b/c.txt": "deep", "top.txt": "top"})
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {m.name: m for m in archive}
        assert [n for n, m in members.items() if m.isdir()] == ["a", "a/b"]
        assert members["a/b"].mode == 0o755 and members["top.txt"].mode == 0o644
        handle = archive.extractfile("a/b/c.txt")
        assert handle is not None and handle.read() == b"deep"


def test_untar_reads_the_single_file_of_an_archive():
    assert untar_file(tar_files({"dir/status.json": '{"ok": 1}'})) == b'{"ok": 1}'
    assert untar_file(tar_files({})) is None


def test_label_filters():
    assert label_filters({"a": "1", "b": "x"}) == {"label": ["a=1", "b=x"]}
    assert label_filters({}) == {"label": []}


def test_info_from_docker_and_libpod_list_entries():
    docker = {
        "Id": "d1",
        "Names": ["/job-node-0"],
        "Created": 1735787045,
        "Labels": {"k": "v"},
        "State": "exited",
        "Status": "Exited (3) 2 seconds ago",
    }
    info = info_from_summary(docker)
    assert (info.id, info.name, info.labels, info.state, info.exit_code) == (
        "d1",
        "job-node-0",
        {"k": "v"},
        "exited",
        3,
    )
    assert info.created == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC) and info.started_at is None
    assert info_from_summary({**docker, "State": "running", "Status": "Up 2 seconds"}).exit_code is None
    assert info_from_summary({**docker, "State": "dead", "Status": "Dead"}).exit_code is None  # unknown: read in full
    libpod = {
        "Id": "p1",
        "Names": ["job-node-1"],
        "Created": "2025-01-02T03:04:05.123456789Z",
        "Labels": None,
        "State": "exited",
        "Exited": True,
        "ExitCode": 0,
        "StartedAt": 1735787046,
        "ExitedAt": 1735787049,
    }
    info = info_from_summary(libpod)
    assert (info.name, info.labels, info.exit_code) == ("job-node-1", {}, 0)
    assert info.created == datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert info.started_at == datetime(2025, 1, 2, 3, 4, 6, tzinfo=UTC)
    assert info.finished_at == datetime(2025, 1, 2, 3, 4, 9, tzinfo=UTC)
    created = info_from_summary(
        {**libpod, "State": "created", "Exited": False, "StartedAt": 0, "ExitedAt": -62135596800}
    )
    assert created.exit_code is None and created.started_at is None and created.finished_at is None


def _frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


@pytest.mark.parametrize("cut", [1, 3, 8, 9, 13, 1000])
def test_demux_frames_across_any_chunking(cut):
    stream = _frame(1, b"line one\n") + _frame(2, b"") + _frame(2, b"err\n") + _frame(1, b"x" * 300 + b"\n")
    chunks = [stream[i : i + cut] for i in range(0, len(stream), cut)]
    assert b"".join(demux_frames(iter(chunks))) == b"line one\nerr\n" + b"x" * 300 + b"\n"


def test_demux_frames_yields_each_chunks_frames_at_once():
    """A followed line is handed over when its chunk arrives, not when a later one does."""
    chunks = iter([_frame(1, b"a\n") + _frame(1, b"b\n")[:5], _frame(1, b"b\n")[5:]])
    out = demux_frames(chunks)
    assert next(out) == b"a\n"
    assert next(out) == b"b\n"
