"""A real Jupyter kernel (nbclient + ipykernel) runs a job on the local backend; the notebook's outputs are the
compact HTML tables and short reprs of the job, the job list, the runtimes and the backends, and the progress
display of a job whose environment installs a package (one output updated in place)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

COUNTS = re.compile(r"\d+/\d+ packages")

CELLS = [
    "from kubeflow_trainer import CustomTrainer, TrainerClient, available_backends\n"
    "from kubeflow_trainer_local import LocalProcessBackendConfig\n"
    "client = TrainerClient(backend_config=LocalProcessBackendConfig(state_dir={state!r}))",
    "def train(greeting: str):\n    print(greeting, 'from the notebook', flush=True)",
    "name = client.train(trainer=CustomTrainer(func=train, func_args={{'greeting': 'hi'}}, num_nodes=2))\n"
    "job = client.wait_for_job_status(name, timeout=600)\n"
    "job",
    "client.list_jobs()",
    "client.list_runtimes()",
    "available_backends()",
    "print(list(client.get_job_logs(name, step='node-1')))\nclient.delete_job(name)",
    "def uses_six():\n    import six\n    print('SIX', six.__version__, flush=True)",
    "fresh = TrainerClient(backend_config=LocalProcessBackendConfig(state_dir={state!r}, cache_dir={cache!r}))\n"
    "name = fresh.train(trainer=CustomTrainer(func=uses_six, packages_to_install=['six'], pip_index_urls=None))\n"
    "status = fresh.wait_for_job_status(name, timeout=600).status\n"
    "fresh.delete_job(name)\n"
    "status",
]


def _result(cell: nbformat.NotebookNode) -> dict[str, str]:
    found = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert found, cell.outputs
    return dict(found[0]["data"])


def test_notebook_shows_jobs_runtimes_and_backends_as_tables(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    where = {"state": str(tmp_path / "state"), "cache": str(tmp_path / "fresh-cache")}
    nb.cells = [nbformat.v4.new_code_cell(c.format(**where)) for c in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    job = _result(nb.cells[2])
    html, text = job["text/html"], job["text/plain"]
    assert text.startswith("TrainJob(name=") and "status='Complete'" in text and "\n" not in text, text
    assert len(text) < 300, text
    assert html.count("<table") == 2, html
    for expected in ("TrainJob ", "Complete", "torch-distributed", "node-0", "node-1", "2 Complete", "(local)"):
        assert expected in html, expected
    name = text.split("'")[1]

    jobs = _result(nb.cells[3])
    assert "1 TrainJob(s)" in jobs["text/html"] and name in jobs["text/html"] and jobs["text/plain"].startswith("[")
    runtimes = _result(nb.cells[4])
    assert "torch-distributed" in runtimes["text/html"] and "FRAMEWORK" in runtimes["text/html"]
    backends = _result(nb.cells[5])
    assert "trainer-backend-local" in backends["text/html"] and "multi-node" in backends["text/html"]
    assert "'local'" in backends["text/plain"]
    printed = "".join(o.get("text", "") for o in nb.cells[6].outputs)
    assert "hi from the notebook" in printed

    progress = [o for o in nb.cells[8].outputs if o.output_type == "display_data"]
    assert len(progress) == 1, nb.cells[8].outputs  # one output, updated in place while the job prepared
    shown = progress[0]["data"]
    assert "<progress" in shown["text/html"], shown
    assert COUNTS.search(shown["text/plain"]) and COUNTS.search(shown["text/html"]), shown  # package counts seen
    assert _result(nb.cells[8])["text/plain"] == "'Complete'"
