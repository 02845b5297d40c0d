"""``run``'s work: the trainer from the command line, the dry run's output, following a job to its end."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from kubeflow_trainer_cli import render
from kubeflow_trainer_cli.exits import ExitCode
from kubeflow_trainer_cli.problems import BadInput
from kubeflow_trainer_cli.shared import Failed, job_json


def build_trainer(target: tuple[str, ...], **kw: Any) -> Any:
    """The trainer TARGET names: a ``CustomTrainer`` for ``FILE.py[:FUNCTION]``, else a
    ``CustomTrainerContainer`` running TARGET as the command in ``--image``."""
    from kubeflow_trainer import CustomTrainer, CustomTrainerContainer

    first = target[0] if target else ""
    if first and first.partition(":")[0].endswith(".py") and os.path.isfile(first.partition(":")[0]):
        if len(target) > 1:
            raise BadInput(f"a function job takes one TARGET (FILE.py:FUNCTION); got also {' '.join(target[1:])!r}")
        from kubeflow_trainer_cli.inputs import load_function

        return CustomTrainer(
            func=load_function(first),
            workspace=kw.get("workspace"),
            func_args=kw["func_args"] or None,
            image=kw["image"],
            packages_to_install=kw["packages"],
            pip_index_urls=kw["index_urls"],
            num_nodes=kw["nodes"],
            resources_per_node=kw["resources"],
            env=kw["env"],
        )
    if first.partition(":")[0].endswith(".py"):
        raise BadInput(f"{first.partition(':')[0]!r} is not a file; give the Python file that defines the function")
    if not kw["image"]:
        raise BadInput(
            "give FILE.py:FUNCTION to run a function, or --image IMAGE [-- COMMAND...] to run a container "
            f"(got {' '.join(target) or 'no TARGET'})"
        )
    unused = [
        flag
        for flag, key in (
            ("--arg", "func_args"),
            ("--package", "packages"),
            ("--pip-index-url", "index_urls"),
            ("--workspace", "workspace"),
        )
        if kw.get(key)
    ]
    if unused:
        raise BadInput(f"{', '.join(unused)} apply to function jobs (FILE.py:FUNCTION), not to a container command")
    return CustomTrainerContainer(
        image=kw["image"],
        num_nodes=kw["nodes"],
        resources_per_node=kw["resources"],
        env=kw["env"],
        command=list(target) or None,
    )


def workspace_of(path: str | None, include: tuple[str, ...], exclude: tuple[str, ...], no_gitignore: bool) -> Any:
    """The ``Workspace`` of ``--workspace`` and its pattern flags; None without it (the flags then are an error)."""
    if path is None:
        given = [
            flag
            for flag, value in (("--include", include), ("--exclude", exclude), ("--no-gitignore", no_gitignore))
            if value
        ]
        if given:
            raise BadInput(f"{', '.join(given)} apply to --workspace DIR; add --workspace (e.g. --workspace .)")
        return None
    from kubeflow_trainer import Workspace

    return Workspace(path=path, include=list(include), exclude=list(exclude), gitignore=not no_gitignore)


def resources_per_node(
    cpu: str | None, memory: str | None, gpu: int | None, others: tuple[str, ...]
) -> dict[str, Any] | None:
    """``--cpu``/``--memory``/``--gpu``/``--resource`` as ``resources_per_node`` (None when none was given)."""
    from kubeflow_trainer_cli.inputs import parse_pairs

    result: dict[str, Any] = parse_pairs(others, "--resource", json_values=True)
    for key, value in (("cpu", cpu), ("memory", memory), ("gpu", gpu)):
        if value is not None:
            result[key] = _number(value) if key == "cpu" else value
    return result or None


def _number(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value


def print_request(result: Any, output: str) -> None:
    """The dry run's typed request as JSON (``-o json``: with the backend and job name)."""
    request = result.request
    data = request.model_dump(mode="json") if hasattr(request, "model_dump") else request
    if output == "json":
        render.emit_json({"backend": result.backend, "name": result.plan.name, "request": data})
        return
    click.echo(f"# dry run on backend '{result.backend}': {type(request).__name__} for job {result.plan.name}")
    for note in result.notes:
        click.echo(f"# {note}")
    render.emit_json(data)


def follow_to_end(client: Any, name: str, *, timeout: float | None, delete: bool, output: str) -> None:
    """Print every node's logs until they end, then the job's outcome (exit 1 when it failed)."""
    from kubeflow_trainer_cli.logs import node_steps, print_all_nodes

    try:
        print_all_nodes(client, name, node_steps(client.get_job(name)), follow=True, tail=None)
        finish(client, name, timeout=timeout or 600.0, output=output)
    except KeyboardInterrupt:
        if not delete:
            render.error(f"stopped following {name}; the job goes on (kubeflow-trainer delete {name} stops it)")
            sys.exit(int(ExitCode.INTERRUPTED))
        raise
    finally:
        if delete:
            client.delete_job(name)


def finish(client: Any, name: str, *, timeout: float, output: str) -> None:
    """Wait for the end of ``name``; print its outcome; exit 1 when it failed."""
    from kubeflow_trainer.errors import JobFailedError

    try:
        job = client.wait_for_job_status(name, status={"Complete", "Failed"}, timeout=timeout, polling_interval=1)
    except JobFailedError as exc:  # a backend that raises rather than returning Failed
        job = exc.job
    if output == "json":
        render.emit_json(job_json(job))
    if str(job.status) == "Failed":
        message = client._failure_message(job) if hasattr(client, "_failure_message") else f"{name} failed"
        hint = f"kubeflow-trainer logs {name} --all --backend {client.backend_name}"
        raise Failed(ExitCode.JOB_FAILED, f"{message}\nEvery node's log: {hint}")
    if output != "json":
        click.echo(f"{name}: {job.status}", err=True)
