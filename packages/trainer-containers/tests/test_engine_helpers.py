"""The helpers both engines use: engine timestamps, inspect parsing, tar archives, label filters."""

from __future__ import annotations

import io
import tarfile
from datetime import datetime, timedelta, timezone

import pytest

from kubeflow_trainer_containers.engine import (
    engine_time,
    info_from_inspect,
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
