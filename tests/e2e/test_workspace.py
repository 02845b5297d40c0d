"""A user's project folder as a 2-node job on local, Docker and Podman, submitted the way a user would: a
script inside the project imports its own training function and passes ``workspace="."``.

The project: a package of two modules (the function uses a module-level constant and a helper of the other
module), a config file read by a relative path, a ``.gitignore``d ``data/`` folder and a large ignored file,
plus what must never leak: a symlink to ``/etc/passwd``, a symlink out of the project (``..``), a FIFO.
Both ranks print values computed from the package and the config; ignored and unsafe files are absent in
the job, and the walk does not hang on the FIFO; the checkpoint rank 0 writes to the output directory is
fetched by a new process after the job ended and matches byte for byte. A notebook-style function using an
undefined global is refused before anything is created.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from conftest import PODMAN_URL, TEST_IMAGE, cli

PROJECT = {
    "wsproj/__init__.py": "",
    "wsproj/models.py": "WIDTH = 8\n\n\ndef layer_sizes(depth):\n    return [WIDTH * (i + 1) for i in range(depth)]\n",
    "wsproj/train.py": textwrap.dedent(
        """
        import os

        from wsproj.models import layer_sizes

        DEPTH = 3


        def train(tag):
            with open("configs/base.yaml") as fh:
                config = dict(line.split(": ") for line in fh.read().splitlines())
            sizes = layer_sizes(DEPTH)
            leaked = [p for p in ("data", "weights.ckpt", "etc_passwd", "up.txt", "fifo", ".git") if os.path.lexists(p)]
            print(f"PROJECT rank={os.environ['RANK']} tag={tag} sizes={sizes} lr={config['lr']} leaked={leaked}",
                  flush=True)
            if os.environ["RANK"] == "0":  # a checkpoint computed from the package and the config
                ckpt = os.path.join(os.environ["KUBEFLOW_TRAINER_OUTPUT_DIR"], "ckpt")
                os.makedirs(ckpt, exist_ok=True)
                with open(os.path.join(ckpt, "model.bin"), "wb") as fh:
                    fh.write(bytes(sizes) * 349525 + f"lr={config['lr']}".encode())
        """
    ),
    "configs/base.yaml": "lr: 0.125\nname: demo\n",
    ".gitignore": "data/\n*.ckpt\n",
    "data/train.csv": "1,2,3\n",
    ".git/HEAD": "ref: refs/heads/main\n",
    "submit.py": textwrap.dedent(
        """
        import sys

        from kubeflow_trainer import CustomTrainer, Name, TrainerClient
        from wsproj.train import train

        client = TrainerClient()
        trainer = CustomTrainer(func=train, func_args={"tag": "e2e"}, num_nodes=2, workspace=".")
        plan = client.dry_run(trainer=trainer).plan
        print("SHIPPED", sorted(f.path for f in plan.workspace.files))
        name = client.train(trainer=trainer, options=[Name(sys.argv[1])])
        job = client.wait_for_job_status(name, timeout=600, polling_interval=0.5)
        print("STATUS", job.status)
        for step in ("node-0", "node-1"):
            for line in client.get_job_logs(name, step=step):
                print(f"[{step}] {line}")
        """
    ),
    "fetch.py": textwrap.dedent(
        """
        import sys

        from kubeflow_trainer import TrainerClient

        client = TrainerClient()  # a new process, after the job ended (its containers exited)
        paths = client.get_job_outputs(sys.argv[1], sys.argv[2])
        print("FETCHED", sorted(str(p.relative_to(sys.argv[2])) for p in paths))
        client.delete_job(sys.argv[1])
        """
    ),
    "notebook.py": textwrap.dedent(
        """
        import sys

        from kubeflow_trainer import CustomTrainer, Name, TrainerClient
        from kubeflow_trainer import FreeNameError

        SCALE = 3

        def train():
            print(SCALE * UNDEFINED_SETTING)

        try:
            TrainerClient().train(trainer=CustomTrainer(func=train), options=[Name(sys.argv[1])])
        except FreeNameError as exc:
            print("REFUSED", exc.names, exc)
        """
    ),
}


def make_project(root: Path) -> None:
    for rel, text in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "weights.ckpt").write_bytes(os.urandom(8 * 1024 * 1024))  # large and ignored
    (root.parent / "outside-secret.txt").write_text("TOP-SECRET-OUTSIDE\n")
    os.symlink("/etc/passwd", root / "etc_passwd")
    os.symlink("../outside-secret.txt", root / "up.txt")
    os.mkfifo(root / "fifo")


def run(root: Path, backend: str, tmp_path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "KUBEFLOW_TRAINER_BACKEND": backend,
        "KUBEFLOW_TRAINER_IMAGE": TEST_IMAGE,
        "KUBEFLOW_TRAINER_PULL_POLICY": "Never",
        "CONTAINER_HOST": PODMAN_URL,
        "KUBEFLOW_TRAINER_LOCAL_STATE_DIR": str(tmp_path / "state"),
        "PYTHONPATH": "",
    }
    out = subprocess.run(
        [sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


@pytest.mark.parametrize("backend", ["local", "docker", "podman"])
def test_project_runs_as_a_two_node_job(backend: str, tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_project(root)
    name = f"ws-e2e-{uuid.uuid4().hex[:8]}"
    stdout = run(root, backend, tmp_path, "submit.py", name)
    shipped = next(line for line in stdout.splitlines() if line.startswith("SHIPPED"))
    assert shipped == (
        "SHIPPED ['.gitignore', 'configs/base.yaml', 'fetch.py', 'notebook.py', 'submit.py', 'wsproj/__init__.py', "
        "'wsproj/models.py', 'wsproj/train.py']"
    )
    assert "STATUS Complete" in stdout, stdout[-3000:]
    for rank in (0, 1):
        assert f"[node-{rank}] PROJECT rank={rank} tag=e2e sizes=[8, 16, 24] lr=0.125 leaked=[]" in stdout, stdout[
            -3000:
        ]
    assert "TOP-SECRET-OUTSIDE" not in stdout and "root:x:" not in stdout
    # The checkpoint rank 0 wrote to the output directory, fetched from a new process after the job ended.
    fetched = run(root, backend, tmp_path, "fetch.py", name, str(tmp_path / "outputs"))
    assert "FETCHED ['ckpt/model.bin']" in fetched, fetched
    assert (tmp_path / "outputs" / "ckpt" / "model.bin").read_bytes() == bytes([8, 16, 24]) * 349525 + b"lr=0.125"


@pytest.mark.parametrize("backend", ["local", "docker", "podman"])
def test_notebook_function_with_an_undefined_global_is_refused_before_anything_starts(
    backend: str, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    make_project(root)
    name = f"ws-nb-{uuid.uuid4().hex[:8]}"
    stdout = run(root, backend, tmp_path, "notebook.py", name)
    assert "REFUSED ('UNDEFINED_SETTING',)" in stdout, stdout
    if backend == "local":
        assert not (tmp_path / "state" / "jobs" / name).exists() and not (tmp_path / "state" / "jobs").exists()
    else:
        label = f"label=trainer.kubeflow.org/trainjob-name={name}"
        assert not cli(backend, "ps", "-a", "--filter", label, "--format", "{{.Names}}").strip()
        assert not cli(backend, "volume", "ls", "--filter", label, "--format", "{{.Name}}").strip()
        assert not cli(backend, "network", "ls", "--filter", label, "--format", "{{.Name}}").strip()


def test_an_unchanged_workspace_is_uploaded_once(engine: str, tmp_path: Path) -> None:
    """The real engine keeps the content-addressed volume: the second job with the same files uploads nothing."""
    from conftest import config_for

    from kubeflow_trainer import CustomTrainer, Name, TrainerClient

    root = tmp_path / "project"
    root.mkdir()
    (root / "helpers.py").write_text(f"TOKEN = {uuid.uuid4().hex!r}\n")  # new content: a new volume
    names = [f"ws-once-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with TrainerClient(config_for(engine)) as client:
        uploads: list[str] = []
        original = client.backend.engine.put_archive

        def counting(container: str, directory: str, data: bytes) -> None:
            uploads.append(directory)
            original(container, directory, data)

        client.backend.engine.put_archive = counting  # type: ignore[method-assign]
        volume = ""
        try:
            for name in names:
                client.train(trainer=CustomTrainer(func=_noop, workspace=str(root)), options=[Name(name)])
            request = client.dry_run(trainer=CustomTrainer(func=_noop, workspace=str(root))).request
            volume = request.workspace.volume.name
            # the SDK's own small files go to /workspace for each job; the project only once
            assert uploads.count("/opt/kft/workspace") == 1 and uploads.count("/workspace") == 2, uploads
        finally:
            for name in names:
                client.delete_job(name)
            if volume:
                cli(engine, "volume", "rm", "-f", volume)


def _noop() -> None:
    print("noop")
