"""Root causes, log helpers and the progress display: our own logic, without a backend (the backends' suites
and the conformance kit run the same features on real jobs)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from kubeflow_trainer.logs import LogEntry, follow_from_tail, latest_state, merge_by_time, merge_following, tail
from kubeflow_trainer.preparation import InstallerProgress
from kubeflow_trainer.progress import PREPARING_REASON, ProgressDisplay, progress_mode
from kubeflow_trainer.rootcause import (
    Failure,
    environment_failure,
    exit_reason,
    first_failure,
    from_log,
    parse_error_file,
)
from kubeflow_trainer.shipping import build_script
from kubeflow_trainer.types import Event, JobStatus, Preparation, TrainJob

TORCHRUN_LOG = """\
[rank1]: Traceback (most recent call last):
[rank1]:   File "/workspace/train.py", line 40, in <module>
[rank1]:     train(**_kft_args)
[rank1]:   File "/workspace/train.py", line 7, in train
[rank1]:     import helpers
[rank1]: ModuleNotFoundError: No module named 'helpers'
E1207 torch.distributed.elastic.multiprocessing.api: failed (exitcode: 1)
Traceback (most recent call last):
  File "/venv/bin/torchrun", line 8, in <module>
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
"""


def user_function(epochs: int = 1) -> None:
    print("about to fail")
    import helpers  # type: ignore[import-not-found]  # noqa: F401

    print(epochs)


def test_generated_script_records_the_users_exception_and_line(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(build_script(user_function, {"epochs": 2}))
    error_file = tmp_path / "error.json"
    env = {**os.environ, "TORCHELASTIC_ERROR_FILE": str(error_file), "RANK": "3"}
    env.pop("KFT_TERMINATION_LOG", None)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "ModuleNotFoundError" in proc.stderr  # the traceback still goes to the log
    doc = json.loads(error_file.read_text())
    assert doc["message"]["message"] == "ModuleNotFoundError: No module named 'helpers'"  # torchrun's format
    assert "py_callstack" in doc["message"]["extraInfo"]
    failure = parse_error_file(error_file.read_text())
    assert failure is not None
    line = user_function.__code__.co_firstlineno + 2
    assert (failure.exc_type, failure.rank, failure.file, failure.line) == (
        "ModuleNotFoundError",
        3,
        __file__,
        line,
    )
    assert failure.describe() == (
        f"rank 3: ModuleNotFoundError: No module named 'helpers' (File \"{__file__}\", line {line}, in "
        "user_function: import helpers  # type: ignore[import-not-found]  # noqa: F401)"
    )


def test_generated_script_appends_a_compact_termination_message(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(build_script(user_function, None))
    term = tmp_path / "termination-log"
    term.write_text("")
    env = {**os.environ, "KFT_TERMINATION_LOG": str(term)}
    env.pop("TORCHELASTIC_ERROR_FILE", None)
    subprocess.run([sys.executable, str(script)], env=env, capture_output=True, check=False)
    lines = term.read_text().splitlines()
    assert len(lines) == 1 and len(lines[0]) < 1000
    assert parse_error_file(lines[0]).text == "No module named 'helpers'"  # type: ignore[union-attr]


def test_error_files_of_torch_without_our_fields_and_first_failure():
    plain = {"message": {"message": "RuntimeError: boom", "extraInfo": {"py_callstack": "", "timestamp": "1"}}}
    assert parse_error_file(json.dumps(plain)) == Failure("RuntimeError", "boom")
    assert parse_error_file("not json") is None
    assert parse_error_file(None) is None
    early, late = Failure("A", "x", rank=1, time=1.0), Failure("B", "y", rank=0, time=2.0)
    assert first_failure([late, None, early]) is early
    assert first_failure([None]) is None


def test_traceback_in_a_torchrun_log():
    found = from_log(TORCHRUN_LOG.splitlines())
    assert found == Failure(
        "ModuleNotFoundError", "No module named 'helpers'", "/workspace/train.py", 7, "train", "import helpers", 1
    )
    assert from_log(["all good"]) is None


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            "  \u00d7 No solution found when resolving dependencies:\n"
            "  \u2570\u2500\u25b6 Because kft-no-such-pkg was not found in the package registry and you require "
            "kft-no-such-pkg, we can conclude that your requirements are unsatisfiable.",
            "the requirement 'kft-no-such-pkg' could not be resolved: Because kft-no-such-pkg was not found",
        ),
        (
            "ERROR: Could not find a version that satisfies the requirement nopkg==9 (from versions: none)\n"
            "ERROR: No matching distribution found for nopkg==9",
            "the requirement 'nopkg==9' could not be resolved: ERROR: No matching distribution found for nopkg==9",
        ),
    ],
)
def test_environment_failures_name_the_requirement(output, expected):
    assert (environment_failure(output) or "").startswith(expected)
    assert environment_failure("Successfully installed six") is None


def test_exit_reasons_name_out_of_memory():
    assert "out of memory" in exit_reason(137, oom_killed=True) and "OOMKilled" in exit_reason(137, True)
    assert "out of memory" in exit_reason(137)
    assert exit_reason(-15) == "killed by signal SIGTERM"
    assert exit_reason(2) == "exited with code 2"


def test_log_helpers():
    assert latest_state("\r 0%\r 50%\r100%") == "100%"
    assert latest_state("done\r") == "done"
    assert tail(iter(range(5)), 2) == [3, 4] and tail([1], 0) == []
    assert list(follow_from_tail(lambda: ["a", "b", "c"], lambda: iter(["a", "b", "c", "d"]), 2)) == ["b", "c", "d"]
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    streams = {
        "node-0": [LogEntry(t0, "a"), LogEntry(t0 + timedelta(seconds=2), "c"), LogEntry(None, "c2")],
        "node-1": [LogEntry(t0 + timedelta(seconds=1), "b")],
    }
    assert [(s, e.text) for s, e in merge_by_time(streams)] == [
        ("node-0", "a"),
        ("node-1", "b"),
        ("node-0", "c"),
        ("node-0", "c2"),
    ]
    followed = merge_following({"node-0": iter([LogEntry(None, "x")]), "node-1": iter([LogEntry(None, "y")])})
    assert sorted(e.text for _, e in followed) == ["x", "y"]


def test_installer_progress_from_uv_and_pip():
    uv = InstallerProgress()
    assert uv.preparation().phase == "resolving packages"
    uv.feed("Resolved 12 packages in 1.2s")
    uv.feed("Downloading torch (180.2MiB)")
    prep = uv.preparation()
    assert (prep.phase, prep.done, prep.total, prep.detail) == ("downloading packages", 0, 12, "torch, 180.2MiB")
    assert prep.describe() == "downloading packages: 0/12 packages (torch, 180.2MiB)"
    uv.feed(" Downloaded torch")
    uv.feed("Prepared 3 packages in 20s")
    uv.feed("Installed 11 packages in 90ms")
    assert uv.preparation().describe() == "installed packages: 12/12 packages"
    pip = InstallerProgress()
    pip.feed("Collecting six")
    assert pip.preparation().describe() == "resolving packages: 1/1 packages found"
    pip.feed("  Downloading six-1.17.0-py2.py3-none-any.whl (11 kB)")
    pip.feed("Installing collected packages: six, tqdm")
    assert pip.preparation().describe() == "installing packages: 0/2 packages"
    pip.feed("Successfully installed six-1.17.0 tqdm-4.67.1")
    assert pip.preparation().describe() == "installed packages: 2/2 packages"


def test_installer_progress_with_colours_and_a_bytecode_phase():
    """A kernel or CI that forces colours: the installer's escapes are stripped; uv's bytecode compilation (most
    of a torch install) is a phase of its own when the logged command asks for it."""
    uv = InstallerProgress()
    uv.feed("$ /x/uv pip install --color never --python /v/bin/python --compile-bytecode torch")
    uv.feed("\x1b[2mResolved \x1b[1m31 packages\x1b[0m \x1b[2min 390ms\x1b[0m\x1b[0m")
    assert uv.preparation().describe() == "downloading packages: 0/31 packages"
    uv.feed("\x1b[2mInstalled \x1b[1m30 packages\x1b[0m \x1b[2min 358ms\x1b[0m\x1b[0m")
    assert uv.preparation().describe() == "compiling bytecode: 31/31 packages installed"
    uv.feed("Bytecode compiled 5603 files in 24.31s")
    assert uv.preparation().describe() == "installed packages: 31/31 packages"


def _job(status: JobStatus, preparation: Preparation | None = None) -> TrainJob:
    return TrainJob(name="j", creation_timestamp=datetime.now(timezone.utc), status=status, preparation=preparation)


def test_progress_display_plain_lines_events_and_closing(monkeypatch):
    monkeypatch.delenv("KUBEFLOW_TRAINER_PROGRESS", raising=False)
    out = io.StringIO()
    assert progress_mode(None, out) == "plain"  # not a terminal, not a notebook
    display = ProgressDisplay("j", stream=out)
    prep = Preparation(phase="downloading packages", done=1, total=4, unit="packages")
    display.update(_job(JobStatus.CREATED, prep))
    display.update(_job(JobStatus.CREATED, prep))  # unchanged: no new line
    now = datetime.now(timezone.utc)
    event = Event(
        involved_object_kind="TrainJob",
        involved_object_name="j",
        message="installed packages: 4/4 packages",
        reason=PREPARING_REASON,
        event_time=now,
    )
    display.update(_job(JobStatus.RUNNING), [event])  # a step the polls missed, then the job runs: closed
    display.update(_job(JobStatus.CREATED, prep))
    assert out.getvalue().splitlines() == [
        "[j] downloading packages: 1/4 packages",
        "[j] installed packages: 4/4 packages",
    ]
    assert display.closed


def test_progress_display_off_and_late(monkeypatch):
    out = io.StringIO()
    monkeypatch.setenv("KUBEFLOW_TRAINER_PROGRESS", "0")
    off = ProgressDisplay("j", stream=out)
    off.update(_job(JobStatus.CREATED))
    monkeypatch.delenv("KUBEFLOW_TRAINER_PROGRESS")
    late = ProgressDisplay("j", stream=out)
    late.update(_job(JobStatus.COMPLETE))  # opened after the preparation: nothing to show
    assert out.getvalue() == "" and off.closed and late.closed


def test_progress_display_live_bar_renders(monkeypatch):
    monkeypatch.setenv("KUBEFLOW_TRAINER_PROGRESS", "1")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    with ProgressDisplay("j", stream=out) as display:
        assert display.mode == "live"
        display.update(_job(JobStatus.CREATED, Preparation(phase="pulling image", done=2, total=5, unit="layers")))
    assert "pulling image: 2/5 layers" in out.getvalue()


def test_following_merges_lines_in_the_order_they_were_written():
    """node-1's stream delivers its line late (its reader is slower), but it was written first: within the
    reorder window the merged follow gives it first; each stream keeps its own order."""
    import time as clock
    from datetime import timedelta

    t0 = datetime.now(timezone.utc)

    def node0() -> Iterator[LogEntry]:
        yield LogEntry(t0 + timedelta(seconds=1), "second")
        yield LogEntry(t0 + timedelta(seconds=3), "fourth")

    def node1() -> Iterator[LogEntry]:
        clock.sleep(0.1)  # delivered after node-0's first line, written before it
        yield LogEntry(t0, "first")
        yield LogEntry(t0 + timedelta(seconds=2), "third")
        yield LogEntry(None, "no time: after third")

    merged = [e.text for _, e in merge_following({"node-0": node0(), "node-1": node1()}, window=0.5)]
    assert merged == ["first", "second", "third", "no time: after third", "fourth"], merged
