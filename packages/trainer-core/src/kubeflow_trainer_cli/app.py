"""The ``kubeflow-trainer`` commands (click). The SDK is imported inside each command, never at module level:
``--help`` and shell completion do not pay for importing pydantic and the types."""

from __future__ import annotations

from typing import Any

import click

from kubeflow_trainer_cli import render
from kubeflow_trainer_cli.exits import ExitCode, exit_code_for
from kubeflow_trainer_cli.problems import BadInput
from kubeflow_trainer_cli.shared import (
    BACKEND_ENV,
    CONTEXT,
    Failed,
    backend_name,
    backend_options,
    client_for,
    complete_jobs,
    dump,
    handles_errors,
    job_json,
    output_option,
)
from kubeflow_trainer_cli.submit import (
    build_trainer,
    finish,
    follow_to_end,
    print_request,
    resources_per_node,
    workspace_of,
)


# The group ---------------------------------------------------------------------------------------------------
@click.group(context_settings=CONTEXT)
@click.version_option(package_name="trainer-core", prog_name="kubeflow-trainer")
def cli() -> None:
    """Run and manage Kubeflow Trainer jobs on any installed backend (local processes, Docker, Podman,
    Kubernetes, third-party plugins).

    \b
    Examples:
      kubeflow-trainer backends
      kubeflow-trainer run train.py:train --backend local --nodes 2 --arg epochs=2 --follow
      kubeflow-trainer list -b docker
      kubeflow-trainer logs JOB -f --all
      kubeflow-trainer doctor -b kubernetes

    \b
    Exit codes: 0 ok, 1 job failed, 2 bad input, 3 not found, 4 backend unavailable (or a doctor check
    failed), 5 backend not installed or broken, 6 timed out, 10 other backend error, 130 interrupted.
    Shell completion: eval "$(kubeflow-trainer completion bash)" (or zsh, fish).
    """


# backends / runtimes ----------------------------------------------------------------------------------------
@cli.command()
@output_option
@handles_errors
def backends(output: str) -> None:
    """Installed backends: distribution, version, capabilities; plugins that failed to load and name
    conflicts, with the reason."""
    from kubeflow_trainer.display import describe_backends

    infos = describe_backends()
    if output == "json":
        from dataclasses import asdict

        render.emit_json([asdict(i) for i in infos])
        return
    render.table([i.row() for i in infos], empty="no backend installed: pip install 'trainer-core[all]'")
    default = backend_name(None)
    if default not in {i.name for i in infos if not i.problem}:
        click.echo(f"\nThe default backend '{default}' is not usable: pick one with --backend or ${BACKEND_ENV}.")


@cli.command()
@backend_options
@output_option
@handles_errors
def runtimes(backend: str | None, config: tuple[str, ...], output: str) -> None:
    """Training runtimes the backend offers."""
    from kubeflow_trainer.display import runtime_row

    with client_for(backend, config) as client:
        found = client.list_runtimes()
    if output == "json":
        render.emit_json([dump(r, exclude={"spec"}) for r in found])
    else:
        render.table([runtime_row(r) for r in found], empty="no runtimes")


# run ----------------------------------------------------------------------------------------------------------
@cli.command(context_settings={"allow_interspersed_args": True})
@click.argument("target", nargs=-1, required=False)
@backend_options
@click.option("--nodes", "-n", type=click.IntRange(min=1), default=None, help="Number of nodes (default: runtime's).")
@click.option("--arg", "-a", "args", multiple=True, metavar="KEY=VALUE", help="Function argument; JSON values.")
@click.option("--env", "-e", "envs", multiple=True, metavar="KEY=VALUE", help="Environment variable of every node.")
@click.option("--package", "-p", "packages", multiple=True, metavar="REQ", help="pip requirement to install.")
@click.option("--pip-index-url", "index_urls", multiple=True, metavar="URL", help="Package index (first: main).")
@click.option("--image", default=None, help="Container image (function jobs: instead of the runtime's).")
@click.option(
    "--workspace", "-w", default=None, metavar="DIR", help="Project folder shipped as the job's working directory."
)
@click.option("--include", "includes", multiple=True, metavar="PATTERN", help="--workspace: ship it though ignored.")
@click.option("--exclude", "excludes", multiple=True, metavar="PATTERN", help="--workspace: do not ship it.")
@click.option("--no-gitignore", is_flag=True, help="--workspace: ship what .gitignore files exclude too.")
@click.option("--cpu", default=None, help="CPUs per node (e.g. 2, 500m).")
@click.option("--memory", default=None, help="Memory per node (e.g. 4Gi).")
@click.option("--gpu", type=click.IntRange(min=1), default=None, help="GPUs per node.")
@click.option("--resource", "resources", multiple=True, metavar="KEY=VALUE", help="Other resource per node.")
@click.option("--runtime", "-r", default=None, help="Runtime name (default: torch-distributed).")
@click.option("--name", default=None, help="Job name (default: generated).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Job label.")
@click.option("--follow", "-f", is_flag=True, help="Stream every node's logs; exit with the job's result.")
@click.option("--dry-run", is_flag=True, help="Print the backend's native request; start nothing.")
@click.option("--timeout", type=float, default=None, help="--follow: give up after this many seconds (exit 6).")
@click.option("--delete", is_flag=True, help="--follow: delete the job once it has ended.")
@output_option
@handles_errors
def run(
    target: tuple[str, ...],
    backend: str | None,
    config: tuple[str, ...],
    nodes: int | None,
    args: tuple[str, ...],
    envs: tuple[str, ...],
    packages: tuple[str, ...],
    index_urls: tuple[str, ...],
    image: str | None,
    workspace: str | None,
    includes: tuple[str, ...],
    excludes: tuple[str, ...],
    no_gitignore: bool,
    cpu: str | None,
    memory: str | None,
    gpu: int | None,
    resources: tuple[str, ...],
    runtime: str | None,
    name: str | None,
    labels: tuple[str, ...],
    follow: bool,
    dry_run: bool,
    timeout: float | None,
    delete: bool,
    output: str,
) -> None:
    """Submit a job: a function from a Python file, or a command in a container image.

    \b
    TARGET is FILE.py:FUNCTION (FILE.py alone: its function `train`), run on every process of every node
    with the --arg values as keyword arguments; with --workspace DIR the project folder ships with it (the
    job's working directory, its modules importable; .gitignore respected). Anything else is a command run in
    --image (CustomTrainerContainer; no TARGET: the image's entrypoint); put it after `--`:
      kubeflow-trainer run train.py:main --nodes 2 --arg epochs=3 --package torch --follow
      kubeflow-trainer run src/train.py:main --workspace . --exclude 'data/' --follow
      kubeflow-trainer run -b docker --image my/trainer:1 -- python -m train --epochs 3
    Prints the job's name (json: name and backend), or with --dry-run the request the backend would execute.
    """
    from kubeflow_trainer_cli.inputs import parse_pairs

    trainer = build_trainer(
        target,
        nodes=nodes,
        func_args=parse_pairs(args, "--arg", json_values=True),
        env=parse_pairs(envs, "--env") or None,
        packages=list(packages) or None,
        index_urls=list(index_urls) or None,
        image=image,
        resources=resources_per_node(cpu, memory, gpu, resources),
        workspace=workspace_of(workspace, includes, excludes, no_gitignore),
    )
    options: list[Any] = []
    if name:
        from kubeflow_trainer import Name

        options.append(Name(name=name))
    if labels:
        from kubeflow_trainer import Labels

        options.append(Labels(labels=parse_pairs(labels, "--label")))
    with client_for(backend, config) as client:
        if dry_run:
            result = client.dry_run(runtime=runtime, trainer=trainer, options=options or None)
            print_request(result, output)
            return
        job_name = client.train(runtime=runtime, trainer=trainer, options=options or None)
        if output == "json" and not follow:
            render.emit_json({"name": job_name, "backend": client.backend_name})
            return
        click.echo(job_name if not follow else f"started {job_name} on {client.backend_name}", err=follow)
        if follow:
            follow_to_end(client, job_name, timeout=timeout, delete=delete, output=output)


# list / get / logs / events / wait / delete -----------------------------------------------------------------
@cli.command("list")
@backend_options
@click.option("--runtime", "-r", default=None, help="Only jobs of this runtime.")
@output_option
@handles_errors
def list_(backend: str | None, config: tuple[str, ...], runtime: str | None, output: str) -> None:
    """Jobs on the backend, oldest first."""
    from kubeflow_trainer.display import job_row

    with client_for(backend, config) as client:
        jobs = client.list_jobs(client.get_runtime(runtime) if runtime else None)
    if output == "json":
        render.emit_json([job_json(j) for j in jobs])
    else:
        render.table([job_row(j) for j in jobs], empty="no jobs")


@cli.command()
@click.argument("name", shell_complete=complete_jobs)
@backend_options
@output_option
@handles_errors
def get(name: str, backend: str | None, config: tuple[str, ...], output: str) -> None:
    """A job: status, runtime, steps, what its code reported."""
    from kubeflow_trainer.display import preparing, step_row, when

    with client_for(backend, config) as client:
        job = client.get_job(name)
    if output == "json":
        render.emit_json(job_json(job))
        return
    pairs = [
        ("name", job.name),
        ("status", str(job.status)),
        ("backend", job.backend),
        ("runtime", job.runtime.name if job.runtime else ""),
        ("nodes", str(job.num_nodes)),
        ("created", when(job.creation_timestamp)),
    ]
    if preparing(job):
        pairs.append(("preparing", preparing(job)))
    if job.labels:
        pairs.append(("labels", ", ".join(f"{k}={v}" for k, v in job.labels.items())))
    status = job.trainer_status
    if status is not None and status.progress_percentage is not None:
        pairs.append(("progress", f"{status.progress_percentage} %"))
    if status is not None and status.metrics:
        pairs.append(("metrics", ", ".join(f"{k}={v}" for k, v in status.metrics.items())))
    if job.message:
        pairs.append(("message", job.message))
    render.fields(pairs)
    click.echo()
    render.table([step_row(s) for s in job.steps], empty="no steps yet")


@cli.command()
@click.argument("name", shell_complete=complete_jobs)
@backend_options
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the step(s) end.")
@click.option("--step", "-s", default=None, help="Step to show (default node-0): node-1, dataset-initializer...")
@click.option("--all", "all_steps", is_flag=True, help="Every step, each line prefixed with [step].")
@click.option("--tail", "-t", type=click.IntRange(min=0), default=None, help="Only the last N lines (per step).")
@handles_errors
def logs(
    name: str,
    backend: str | None,
    config: tuple[str, ...],
    follow: bool,
    step: str | None,
    all_steps: bool,
    tail: int | None,
) -> None:
    """A job's logs: one step (node-0 by default) or --all."""
    from kubeflow_trainer_cli.logs import node_steps, print_all_nodes, print_logs

    if step and all_steps:
        raise BadInput("give --step STEP or --all, not both")
    with client_for(backend, config) as client:
        if all_steps:
            print_all_nodes(client, name, node_steps(client.get_job(name)), follow=follow, tail=tail)
        else:
            print_logs(client, name, [step or "node-0"], follow=follow, tail=tail)


@cli.command()
@click.argument("name", shell_complete=complete_jobs)
@backend_options
@output_option
@handles_errors
def events(name: str, backend: str | None, config: tuple[str, ...], output: str) -> None:
    """A job's lifecycle events, oldest first."""
    from kubeflow_trainer.display import shorten, when

    with client_for(backend, config) as client:
        client.get_job(name)  # a missing job is "not found", not an empty list
        found = client.get_job_events(name)
    if output == "json":
        render.emit_json([dump(e) for e in found])
        return
    rows = [
        {
            "time": when(e.event_time),
            "object": f"{e.involved_object_kind}/{e.involved_object_name}",
            "reason": e.reason,
            "message": shorten(e.message, 200),
        }
        for e in found
    ]
    render.table(rows, empty="no events (this backend may not record events: see `kubeflow-trainer backends`)")


@cli.command()
@click.argument("name", shell_complete=complete_jobs)
@backend_options
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["Created", "Running", "Complete", "Failed"]),
    help="Status to wait for (repeatable; default: Complete). A Failed job exits 1 unless Failed is awaited.",
)
@click.option("--timeout", type=float, default=600, show_default=True, help="Seconds to wait (then exit 6).")
@output_option
@handles_errors
def wait(
    name: str, backend: str | None, config: tuple[str, ...], statuses: tuple[str, ...], timeout: float, output: str
) -> None:
    """Wait until the job reaches a status (default: Complete); exit 1 if it failed."""
    with client_for(backend, config) as client:
        if not statuses or set(statuses) == {"Complete"}:
            finish(client, name, timeout=timeout, output=output)
            return
        job = client.wait_for_job_status(name, status=set(statuses), timeout=timeout, polling_interval=1)
    if output == "json":
        render.emit_json(job_json(job))
    else:
        click.echo(f"{name}: {job.status}")


@cli.command()
@click.argument("names", nargs=-1, required=True, shell_complete=complete_jobs)
@backend_options
@handles_errors
def delete(names: tuple[str, ...], backend: str | None, config: tuple[str, ...]) -> None:
    """Stop jobs and remove everything the backend created for them. Every name is tried; the exit code is
    the first failure's."""
    from kubeflow_trainer.errors import TrainerError

    first: BaseException | None = None
    with client_for(backend, config) as client:
        for name in names:
            try:
                client.delete_job(name)
            except TrainerError as exc:
                render.error(str(exc))
                first = first or exc
                continue
            click.echo(f"deleted {name}")
    if first is not None:
        raise Failed(exit_code_for(first))


# doctor ------------------------------------------------------------------------------------------------------
@cli.command()
@backend_options
@output_option
@handles_errors
def doctor(backend: str | None, config: tuple[str, ...], output: str) -> None:
    """Check what the backend needs on this machine and print the fix for each failing check (exit 4 if one
    fails)."""
    from kubeflow_trainer.doctor import run_checks
    from kubeflow_trainer_cli.inputs import backend_config

    name = backend_name(backend)
    try:
        settings = backend_config(name, config)
    except BadInput:
        raise
    except Exception:  # not installed: the checks say so with the fix
        settings = None
    checks = run_checks(name, settings)
    if output == "json":
        render.emit_json({"backend": name, "ok": all(c.ok for c in checks), "checks": [c.to_dict() for c in checks]})
    else:
        render.table(
            [{"result": c.status, "check": c.name, "detail": c.detail, "fix": c.fix} for c in checks],
            title=f"backend '{name}'",
        )
    failing = [c for c in checks if not c.ok]
    if failing:
        raise Failed(ExitCode.BACKEND_UNAVAILABLE, f"{len(failing)} check(s) failed; the FIX column says what to do")


# completion -------------------------------------------------------------------------------------------------
@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(kubeflow-trainer completion bash)" in ~/.bashrc."""
    from click.shell_completion import get_completion_class

    comp_cls = get_completion_class(shell)
    if comp_cls is None:  # pragma: no cover - the Choice above lists the shells click knows
        raise click.UsageError(f"no completion for {shell}")
    comp = comp_cls(cli, {}, "kubeflow-trainer", "_KUBEFLOW_TRAINER_COMPLETE")
    click.echo(comp.source())
