"""Workspaces (what ships, limits, safety) and how the function reaches the job (by reference / free names)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from kubeflow_trainer import CustomTrainer, update_trainjob_status
from kubeflow_trainer.errors import InvalidRequestError
from kubeflow_trainer.funcref import FreeNameError
from kubeflow_trainer.plan import build_plan
from kubeflow_trainer.runtimes import builtin_runtimes
from kubeflow_trainer.workspace import Workspace, WorkspaceTooLargeError, take_snapshot


def write(root: os.PathLike[str] | str, rel: str, text: str = "x") -> None:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def paths(workspace: Workspace) -> list[str]:
    return [f.path for f in take_snapshot(workspace).files]


def test_gitignore_defaults_and_patterns(tmp_path):
    write(tmp_path, "mypkg/__init__.py")
    write(tmp_path, "mypkg/models.py")
    write(tmp_path, "configs/base.yaml")
    write(tmp_path, ".gitignore", "data/\n*.bin\n")
    write(tmp_path, "data/train.csv")
    write(tmp_path, "big.bin")
    write(tmp_path, ".git/HEAD")
    write(tmp_path, "mypkg/__pycache__/models.cpython-312.pyc")
    write(tmp_path, "myenv/pyvenv.cfg")  # a virtualenv by any name
    write(tmp_path, "myenv/lib/x.py")
    write(tmp_path, "sub/.gitignore", "local.txt\n")
    write(tmp_path, "sub/local.txt")
    write(tmp_path, "sub/kept.txt")
    assert paths(Workspace(path=str(tmp_path))) == [
        ".gitignore",
        "configs/base.yaml",
        "mypkg/__init__.py",
        "mypkg/models.py",
        "sub/.gitignore",
        "sub/kept.txt",
    ]
    got = paths(Workspace(path=str(tmp_path), include=["data/"], exclude=["configs/"]))
    assert "data/train.csv" in got and "configs/base.yaml" not in got
    assert "big.bin" in paths(Workspace(path=str(tmp_path), gitignore=False))


def test_digest_is_content_addressed(tmp_path):
    write(tmp_path, "a.py", "A = 1\n")
    first = take_snapshot(Workspace(path=str(tmp_path)))
    assert take_snapshot(Workspace(path=str(tmp_path))).digest == first.digest
    write(tmp_path, "a.py", "A = 2\n")
    assert take_snapshot(Workspace(path=str(tmp_path))).digest != first.digest
    assert first.summary().startswith("1 files")


def test_archive_is_deterministic_and_relative(tmp_path):
    write(tmp_path, "pkg/m.py", "print(1)\n")
    snap = take_snapshot(Workspace(path=str(tmp_path)))
    assert snap.archive() == snap.archive()
    with tarfile.open(fileobj=io.BytesIO(snap.archive(compress=True))) as tar:
        names = tar.getnames()
    assert names == ["pkg", "pkg/m.py"]


def test_size_limit_names_largest_files(tmp_path):
    write(tmp_path, "model.ckpt", "0" * 5000)
    write(tmp_path, "small.py", "x")
    snap = take_snapshot(Workspace(path=str(tmp_path)))
    with pytest.raises(WorkspaceTooLargeError, match=r"model\.ckpt.*exclude=\['model\.ckpt'") as info:
        snap.check_limit(1000, backend="test", why="because", alternative="or bake it into the image")
    assert info.value.limit == 1000 and info.value.size == 5001
    snap.check_limit(10_000, backend="test", why="because", alternative="")


def test_symlink_out_fifo_and_dotdot_never_leak_or_hang(tmp_path):
    project = tmp_path / "project"
    write(project, "ok.py", "x")
    write(tmp_path, "secret.txt", "secret")
    os.symlink("/etc/passwd", project / "passwd")
    os.symlink("../secret.txt", project / "up.txt")
    os.symlink(str(tmp_path), project / "parent")  # a directory symlink: never walked
    os.symlink("ok.py", project / "alias.py")  # inside: ships the content
    os.mkfifo(project / "fifo")
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(s=take_snapshot(Workspace(path=str(project)))))
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the walk hung (a FIFO was opened?)"
    snap = result["s"]
    assert [f.path for f in snap.files] == ["alias.py", "ok.py"]  # type: ignore[attr-defined]
    skipped = {s.path: s.reason for s in snap.skipped}  # type: ignore[attr-defined]
    assert set(skipped) == {"passwd", "up.txt", "parent", "fifo"}
    data = snap.archive()  # type: ignore[attr-defined]
    assert b"secret" not in data and b"root:" not in data
    for bad in (["../secret.txt"], ["a/../../b"], ["/etc/passwd"]):
        with pytest.raises(ValueError, match=r"\.\.|absolute"):
            Workspace(path=str(project), include=bad)


def test_workspace_must_be_a_directory(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        CustomTrainer(func=_plain, workspace=str(tmp_path / "missing"))


def _plain() -> None:
    print("hi")


SCALE = 3
OFFSET = {"a": [1, 2]}


def _uses_constants() -> None:
    print(SCALE * 2, OFFSET["a"], os.getcwd())


def _reports() -> None:
    update_trainjob_status(progress_percent=1)


def test_the_in_job_api_is_importable_wherever_the_sdk_is_installed():
    script = _plan(_reports).files["train.py"]
    assert "from kubeflow_trainer.trainjob_status import update_trainjob_status\n" in script


def _uses_dunder() -> None:
    print(__name__)


def test_module_dunders_are_the_scripts_own():
    script = _plan(_uses_dunder).files["train.py"]
    assert "\n__name__ = " not in script and "print(__name__)" in script


def _uses_helper() -> None:
    print(_plain())


def _undefined() -> None:
    print(NOT_DEFINED_ANYWHERE)  # type: ignore[name-defined]  # noqa: F821


def _plan(func, **kw):
    return build_plan(
        backend="test",
        runtime=next(r for r in builtin_runtimes() if r.name == "torch-distributed"),
        trainer=CustomTrainer(func=func, **kw),
        initializer=None,
        options=None,
    )


def test_constants_and_modules_ship_with_the_source():
    plan = _plan(_uses_constants)
    script = plan.files["train.py"]
    assert "SCALE = 3\n" in script and "OFFSET = {'a': [1, 2]}\n" in script and "import os\n" in script
    namespace: dict[str, object] = {"__name__": "not_main"}
    exec(compile(script, "train.py", "exec"), namespace)


def test_free_names_are_refused_before_anything_starts():
    with pytest.raises(FreeNameError, match=r"NOT_DEFINED_ANYWHERE.*is not defined") as info:
        _plan(_undefined)
    assert info.value.names == ("NOT_DEFINED_ANYWHERE",)
    assert isinstance(info.value, InvalidRequestError)
    # a helper of a module outside any workspace: the job would not have it
    with pytest.raises(FreeNameError, match="_plain"):
        _plan(_uses_helper)


def test_notebook_function_with_undefined_global_is_refused():
    namespace: dict[str, object] = {"__name__": "__main__"}
    source = "def train():\n    print(SCALE_FROM_A_LATER_CELL)\n"
    exec(compile(source, "<cell>", "exec"), namespace)
    func = namespace["train"]
    func.__module__ = "__main__"  # type: ignore[attr-defined]
    from kubeflow_trainer.funcref import check_globals

    with pytest.raises(FreeNameError, match="SCALE_FROM_A_LATER_CELL"):
        check_globals(func, None)  # type: ignore[arg-type]


def test_workspace_function_runs_by_reference(tmp_path, monkeypatch):
    write(tmp_path, "mypkg/__init__.py", "")
    write(
        tmp_path,
        "mypkg/train.py",
        textwrap.dedent("""
        from mypkg.helpers import double
        SCALE = 3
        def train(x=1):
            print(double(SCALE * x))
    """),
    )
    write(tmp_path, "mypkg/helpers.py", "def double(v):\n    return 2 * v\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("mypkg.train")
    try:
        plan = _plan(module.train, workspace=str(tmp_path), func_args={"x": 2})
    finally:
        for name in ("mypkg", "mypkg.train", "mypkg.helpers"):
            sys.modules.pop(name, None)
    assert plan.script == ".kft/train.py"
    script = plan.files[".kft/train.py"]
    assert "import_module('mypkg.train')" in script and "def train" not in script
    assert [f.path for f in plan.workspace.files] == ["mypkg/__init__.py", "mypkg/helpers.py", "mypkg/train.py"]
    from kubeflow_trainer.capabilities import Capability

    assert Capability.WORKSPACE in plan.required_capabilities()


def test_launcher_refuses_an_incomplete_volume_and_places_a_complete_one(tmp_path, monkeypatch):
    from kubeflow_trainer import launcher

    source, target = tmp_path / "volume", tmp_path / "job"
    write(source, "pkg/m.py", "X = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KFT_WORKSPACE_SRC", str(source))
    monkeypatch.setenv("KFT_WORKSPACE_DIR", str(target))
    monkeypatch.setenv("KFT_WORKSPACE_DIGEST", "abc")
    monkeypatch.setenv("KFT_WORKSPACE_WAIT", "0.3")
    monkeypatch.setenv("KFT_WORKSPACE_REMEDY", "remove the volume v")
    with pytest.raises(ValueError, match=r"incomplete.*remove the volume v"):
        launcher.place_workspace()
    write(source, launcher.COMPLETE_MARKER, "abc")
    launcher.place_workspace()
    assert os.getcwd() == str(target)
    assert (target / "pkg" / "m.py").read_text() == "X = 1\n" and not (target / launcher.COMPLETE_MARKER).exists()


def _asserts(x: int = 1) -> None:
    assert x == 1, "pytest rewrites this assert: its bytecode loads @py_builtins"


def test_names_added_by_bytecode_rewriting_are_not_the_functions():
    script = _plan(_asserts).files["train.py"]
    assert "@py" not in script.split("def _asserts")[0]


def _run_recorded(script_text: str, cwd: Path, tmp_path: Path) -> Any:
    """Run a generated script as torchrun would (cwd = the workspace, error file set); the recorded failure."""
    from kubeflow_trainer.rootcause import parse_error_file

    script = cwd / ".kft" / "train.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(script_text)
    error_file = tmp_path / "error.json"
    env = {**os.environ, "TORCHELASTIC_ERROR_FILE": str(error_file), "RANK": "1"}
    env.pop("KFT_TERMINATION_LOG", None)
    proc = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    return parse_error_file(error_file.read_text())


def test_a_failure_names_the_workspace_file_and_line(tmp_path, monkeypatch):
    """A function run by reference records the line in the workspace module that raised (not the script's)."""
    project = tmp_path / "project"
    write(project, "mypkg/__init__.py", "")
    body = "import os\n\n\ndef train(x=1):\n    print(x)\n    raise KeyError('no such shard')\n"
    write(project, "mypkg/train.py", body)
    monkeypatch.syspath_prepend(str(project))
    import importlib

    module = importlib.import_module("mypkg.train")
    try:
        plan = _plan(module.train, workspace=str(project))
    finally:
        for name in ("mypkg", "mypkg.train"):
            sys.modules.pop(name, None)
    failure = _run_recorded(plan.files[".kft/train.py"], project, tmp_path)
    assert (failure.exc_type, failure.file, failure.line, failure.rank) == (
        "KeyError",
        os.path.join("mypkg", "train.py"),
        6,
        1,
    )
    assert failure.code == "raise KeyError('no such shard')"


SHIFT = 7


def shipped_with_a_prelude() -> None:
    import math

    print(math.pi * SHIFT)
    raise ValueError("after the prelude")


def test_a_failure_maps_to_the_users_line_after_a_prelude(tmp_path):
    """A by-source function that needs names from around it ships with a prelude before its source; the
    recorded line is still the one in the user's own file."""
    plan = _plan(shipped_with_a_prelude)
    script = plan.files[plan.script]
    assert "SHIFT = 7" in script  # the prelude moved the function's source down
    failure = _run_recorded(script, tmp_path, tmp_path)
    assert failure.file == __file__
    assert failure.line == shipped_with_a_prelude.__code__.co_firstlineno + 4
    assert failure.code == 'raise ValueError("after the prelude")'
