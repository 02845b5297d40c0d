"""The workspace on the container backend (FakeEngine): a volume named by content, mounted in the nodes,
filled by one archive upload ending with the completion marker; over the limit, nothing is created."""

from __future__ import annotations

import io
import tarfile

import pytest
from conftest import IMAGE, make_plan, submit

from kubeflow_trainer.errors import BackendError
from kubeflow_trainer.launcher import COMPLETE_MARKER
from kubeflow_trainer.options import Name
from kubeflow_trainer.types import CustomTrainer
from kubeflow_trainer.workspace import WorkspaceTooLargeError
from kubeflow_trainer_containers import ContainerBackend, ContainerBackendConfig


def work() -> None:
    print("work")


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"  # beside the backend's own files (its queue directory is in tmp_path)
    root.mkdir()
    (root / "helpers.py").write_text("X = 1\n")
    (root / "configs").mkdir()
    (root / "configs" / "a.yaml").write_text("a: 1\n")
    return root


def test_volume_by_content_mounted_and_filled_once_per_upload(backend, engine, project):
    plan = make_plan(CustomTrainer(func=work, num_nodes=2, workspace=str(project)), options=[Name("ws")])
    request = backend.render(plan)
    ws = request.workspace
    assert ws is not None and ws.volume.name == f"kft-cache-ws-{plan.workspace.short_digest}"
    for spec in request.containers:
        assert spec.volumes[ws.volume.name] == "/opt/kft/workspace"
        assert spec.env["KFT_WORKSPACE_SRC"] == "/opt/kft/workspace" and "/workspace/.kft/launch.py" in spec.command
    assert ".kft/train.py" in request.files and ".kft/kubeflow_trainer/__init__.py" in request.files
    submit(backend, plan)
    assert engine.calls.count("put_archive") == 1
    node0 = engine.container("ws-node-0")
    assert node0.files["/opt/kft/workspace/helpers.py"] == b"X = 1\n"
    assert node0.files[f"/opt/kft/workspace/{COMPLETE_MARKER}"] == plan.workspace.digest.encode()
    again = make_plan(CustomTrainer(func=work, workspace=str(project)), options=[Name("ws2")])
    submit(backend, again)  # the same content: its volume exists, nothing is uploaded
    assert engine.calls.count("put_archive") == 1
    assert engine.container("ws2-node-0").spec.volumes[ws.volume.name] == "/opt/kft/workspace"


def test_archive_ends_with_the_marker(project):
    from kubeflow_trainer.workspace import Workspace, take_snapshot

    snap = take_snapshot(Workspace(path=str(project)))
    with tarfile.open(fileobj=io.BytesIO(snap.archive(trailer=(COMPLETE_MARKER, b"d")))) as tar:
        names = tar.getnames()
    assert names[-1] == COMPLETE_MARKER


def test_oversize_is_refused_at_render_with_nothing_created(engine, project):
    (project / "weights.bin").write_bytes(b"\0" * 4096)
    backend = ContainerBackend(ContainerBackendConfig(image=IMAGE, pull_policy="Never", workspace_limit=1024), engine)
    backend.name = "fake"
    plan = make_plan(CustomTrainer(func=work, workspace=str(project)), options=[Name("big")])
    with pytest.raises(WorkspaceTooLargeError, match=r"workspace_limit.*weights\.bin"):
        backend.render(plan)
    assert engine.calls == []


def test_a_failed_upload_removes_the_new_volume(backend, engine, project):
    engine.fail("put_archive", BackendError("disk full"))
    plan = make_plan(CustomTrainer(func=work, workspace=str(project)), options=[Name("fails")])
    with pytest.raises(BackendError, match="disk full"):
        submit(backend, plan)
    assert engine.objects() == (set(), set(), set())
