"""Short reprs and Jupyter HTML of jobs, job lists, runtimes and backends; the CLI's exit-code table; the CLI
with no backend installed (real console script)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

import pytest

from kubeflow_trainer import Runtime, RuntimeTrainer, Step, TrainerType, TrainJob
from kubeflow_trainer.display import BackendList, JobList, RuntimeList


def _runtime() -> Runtime:
    trainer = RuntimeTrainer(
        trainer_type=TrainerType.CUSTOM_TRAINER, framework="torch", image="img:1", packages=("torch",)
    )
    return Runtime(name="torch-distributed", trainer=trainer, spec={"big": "x" * 5000})


def _job(status: str = "Failed") -> TrainJob:
    return TrainJob(
        name="abc123",
        runtime=_runtime(),
        steps=[
            Step(name="node-0", status="Complete", exit_code=0, device="cpu", device_count="1"),
            Step(name="node-1", status=status, exit_code=1, message="ValueError: <bad> & worse"),
        ],
        num_nodes=2,
        creation_timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        status=status,
        message="node-1 exited with code 1 " + "y" * 400,
        backend="local",
    )


def test_job_repr_is_one_short_line() -> None:
    text = repr(_job())
    assert "\n" not in text and len(text) < 300, text
    assert text.startswith("TrainJob(name='abc123', status='Failed', runtime='torch-distributed', num_nodes=2")
    assert "steps='1 Complete, 1 Failed'" in text and "backend='local'" in text
    assert str(_job()) == text
    assert "x" * 50 not in repr(_runtime()) and repr(_runtime()).startswith("Runtime(name='torch-distributed'")


def test_job_html_has_summary_steps_and_escapes() -> None:
    page = _job()._repr_html_()
    assert page.count("<table") == 2
    for text in ("abc123", "torch-distributed", "node-0", "node-1", "Failed", "ValueError: &lt;bad&gt; &amp; worse"):
        assert text in page, text
    assert "<bad>" not in page


def test_lists_stay_lists_and_render_tables() -> None:
    jobs = JobList([_job(), _job("Complete")])
    assert isinstance(jobs, list) and jobs == [_job(), _job("Complete")] and len(jobs) == 2
    assert jobs._repr_html_().count("<tr>") == 3  # header + 2 rows
    assert "no jobs" in JobList()._repr_html_()
    runtimes = RuntimeList([_runtime()])
    assert "img:1" in runtimes._repr_html_() and "img:1" in _runtime()._repr_html_()


def test_dataclass_compat_still_works_on_jobs() -> None:
    job = _job()
    assert dataclasses.asdict(job)["name"] == "abc123"
    assert dataclasses.replace(job, name="other").name == "other"


def test_backend_list_is_the_names() -> None:
    from kubeflow_trainer import available_backends

    names = available_backends()
    assert isinstance(names, BackendList) and names == []  # trainer-core alone
    assert "no backend installed" in names._repr_html_()


def test_exit_codes_map_every_error_kind() -> None:
    from kubeflow_trainer_cli.exits import ExitCode, exit_code_for

    from kubeflow_trainer import errors

    assert exit_code_for(errors.JobFailedError("x")) == ExitCode.JOB_FAILED
    assert exit_code_for(errors.JobNotFoundError("x")) == ExitCode.NOT_FOUND
    assert exit_code_for(errors.RuntimeNotFoundError("x")) == ExitCode.NOT_FOUND
    assert exit_code_for(errors.StepNotFoundError("j", "s", [])) == ExitCode.NOT_FOUND
    assert exit_code_for(errors.InvalidRequestError("x")) == ExitCode.BAD_INPUT
    assert exit_code_for(errors.UnsupportedFeatureError("x")) == ExitCode.BAD_INPUT
    assert exit_code_for(errors.AlreadyExistsError("x")) == ExitCode.BAD_INPUT
    assert exit_code_for(errors.BackendUnavailableError("x")) == ExitCode.BACKEND_UNAVAILABLE
    assert exit_code_for(errors.BackendNotFoundError("x")) == ExitCode.BACKEND_NOT_INSTALLED
    assert exit_code_for(errors.BackendConflictError("x")) == ExitCode.BACKEND_NOT_INSTALLED
    assert exit_code_for(errors.JobTimeoutError("x")) == ExitCode.TIMEOUT
    assert exit_code_for(errors.BackendError("x")) == ExitCode.BACKEND_ERROR


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("kubeflow-trainer", path=os.path.dirname(sys.executable))
    assert exe, "the kubeflow-trainer console script is not installed with trainer-core"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, check=False)


def test_cli_without_backends_names_the_install() -> None:
    result = _cli("list", "--backend", "docker")
    assert result.returncode == 5, result
    assert 'pip install "trainer-core[docker]"' in result.stderr
    doctor = _cli("doctor", "-b", "local", "-o", "json")
    assert doctor.returncode == 4 and '"status": "fail"' in doctor.stdout and "trainer-core[local]" in doctor.stdout
    assert _cli("backends").returncode == 0


@pytest.mark.parametrize("args", [["run"], ["run", "nofile.py:f"], ["logs"], ["wait", "x", "--status", "Done"]])
def test_cli_bad_usage_exits_2(args: list[str]) -> None:
    result = _cli(*args)
    assert result.returncode == 2, result
    assert "Error" in result.stderr


def test_cli_help_imports_neither_the_sdk_nor_rich() -> None:
    """``kubeflow-trainer --help`` (and shell completion of commands) loads click only: what keeps it fast."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kubeflow_trainer_cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "Exit codes" in result.stdout
    modules = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert "click" in modules and "kubeflow_trainer_cli.app" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in ("kubeflow_trainer", "pydantic", "rich", "pluggy"))
    assert heavy == [], heavy


def test_preparation_shows_where_the_job_reports_it() -> None:
    """A job that reports its preparation (``preparation.describe()``) shows it in its repr, row and table."""
    from kubeflow_trainer.display import job_row

    class Preparing(TrainJob):
        preparation: Any = None

    class Stage:
        def describe(self) -> str:
            return "installing packages: 3/12 packages (torch)"

    job = Preparing(name="p", creation_timestamp=datetime.now(timezone.utc), status="Created", preparation=Stage())
    assert job_row(job)["preparing"] == "installing packages: 3/12 packages (torch)"
    assert "preparing='installing packages: 3/12 packages (torch)'" in repr(job)
    assert "3/12 packages" in JobList([job])._repr_html_()
    assert job_row(_job())["preparing"] == "" and "preparing" not in repr(_job())
