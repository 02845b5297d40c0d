"""What every command shares: the ``--backend``/``--config``/``-o`` options, shell completion of backend and
job names, the client, errors turned into exit codes."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from kubeflow_trainer_cli import render
from kubeflow_trainer_cli.exits import ExitCode, exit_code_for
from kubeflow_trainer_cli.problems import BadInput

F = TypeVar("F", bound=Callable[..., Any])
BACKEND_ENV = "KUBEFLOW_TRAINER_BACKEND"
DEFAULT_BACKEND = "kubernetes"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class Failed(Exception):
    """A command's outcome that is not an error of the SDK (a job that ended Failed, a failing doctor check):
    message already printed, exit with ``code``."""

    def __init__(self, code: ExitCode, message: str = "") -> None:
        super().__init__(message)
        self.code = code


# Completion (run on every TAB press: answers from the SDK, failures are silent) -----------------------------
def complete_backends(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of ``--backend``: the installed backends."""
    try:
        from kubeflow_trainer.registry import default_registry

        return [n for n in default_registry().names() if n.startswith(incomplete)]
    except Exception:
        return []


def complete_jobs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of job names: the jobs of the command's backend."""
    try:
        params = ctx.params
        client = client_for(params.get("backend"), params.get("config") or ())
        return [j.name for j in client.list_jobs() if j.name.startswith(incomplete)]
    except Exception:
        return []


# Shared options ---------------------------------------------------------------------------------------------
def backend_options(func: F) -> F:
    """``--backend`` and ``--config key=value`` (the backend's settings, validated against its config model)."""
    func = click.option(
        "--config",
        "-c",
        "config",
        multiple=True,
        metavar="KEY=VALUE",
        help="A setting of the backend's config (e.g. namespace=team-a for kubernetes, "
        "state_dir=/tmp/x for local); repeat for several. Validated against the backend's config model.",
    )(func)
    func = click.option(
        "--backend",
        "-b",
        default=None,
        shell_complete=complete_backends,
        help=f"Backend to use (default: ${BACKEND_ENV}, else {DEFAULT_BACKEND}). See `kubeflow-trainer backends`.",
    )(func)
    return func


def output_option(func: F) -> F:
    """``-o table|json``."""
    return click.option(
        "--output",
        "-o",
        type=click.Choice(render.FORMATS),
        default="table",
        show_default=True,
        help="table for people, json for scripts.",
    )(func)


def handles_errors(func: F) -> F:
    """Turn SDK errors into a message on stderr and the exit code that names their kind."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Failed as exc:
            if str(exc):
                render.error(str(exc))
            sys.exit(int(exc.code))
        except BadInput as exc:
            render.error(str(exc))
            sys.exit(int(ExitCode.BAD_INPUT))
        except KeyboardInterrupt:
            render.error("interrupted")
            sys.exit(int(ExitCode.INTERRUPTED))
        except click.exceptions.Exit:
            raise
        except Exception as exc:
            from kubeflow_trainer.errors import TrainerError

            if not isinstance(exc, TrainerError | ValueError):  # not a documented error: show where it came from
                import traceback

                traceback.print_exc()
            render.error(str(exc) or type(exc).__name__)
            sys.exit(int(exit_code_for(exc)))

    return wrapper  # type: ignore[return-value]


def backend_name(backend: str | None) -> str:
    """``--backend``, else ``$KUBEFLOW_TRAINER_BACKEND``, else ``kubernetes`` (as the SDK)."""
    return backend or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND


def client_for(backend: str | None, config: tuple[str, ...] | list[str]) -> Any:
    """A ``TrainerClient`` on the backend with the ``--config`` settings."""
    from kubeflow_trainer import TrainerClient
    from kubeflow_trainer_cli.inputs import backend_config

    name = backend_name(backend)
    settings = backend_config(name, config)
    if settings is None:
        return TrainerClient(backend=name)
    return TrainerClient(backend_config=settings, backend=name)


def dump(model: Any, **kwargs: Any) -> Any:
    """A model as JSON-ready data."""
    return model.model_dump(mode="json", **kwargs)


def job_json(job: Any) -> Any:
    """A job as JSON-ready data (its runtime's full spec left out)."""
    return dump(job, exclude={"runtime": {"spec"}})
