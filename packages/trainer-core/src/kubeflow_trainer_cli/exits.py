"""Exit codes of ``kubeflow-trainer``: one per kind of outcome a script can act on.

=====  ==========================================================================================
code   meaning
=====  ==========================================================================================
0      success (``run --follow`` / ``wait``: the job completed; ``doctor``: every check passed)
1      the job failed (``run --follow``, ``wait``, ``logs -f`` of a job that ended Failed)
2      bad input: a usage error, an invalid request, option or ``--config`` setting, a taken job
       name, a file or function that cannot be loaded (nothing was started)
3      not found: no such job, runtime or step
4      backend unavailable: its engine or API server cannot be reached (``doctor``: a check failed)
5      backend not installed, broken plugin, or a name registered by two distributions
6      timed out (``wait --timeout``)
10     any other error of the backend or the SDK (the message says what happened; an unexpected one
       with its traceback)
130    interrupted (Ctrl-C)
=====  ==========================================================================================

Imports nothing of the SDK at module level: ``--help`` and shell completion stay fast.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the process exit status means (see the module docstring)."""

    OK = 0
    JOB_FAILED = 1
    BAD_INPUT = 2
    NOT_FOUND = 3
    BACKEND_UNAVAILABLE = 4
    BACKEND_NOT_INSTALLED = 5
    TIMEOUT = 6
    BACKEND_ERROR = 10
    INTERRUPTED = 130


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an error the SDK raised (``BACKEND_ERROR`` for an unknown ``TrainerError``)."""
    from pydantic import ValidationError

    from kubeflow_trainer import errors

    table: list[tuple[type[BaseException], ExitCode]] = [
        (errors.JobFailedError, ExitCode.JOB_FAILED),
        (errors.NotFoundError, ExitCode.NOT_FOUND),  # before InvalidRequestError: RuntimeNotFoundError is both
        (errors.InvalidRequestError, ExitCode.BAD_INPUT),
        (errors.AlreadyExistsError, ExitCode.BAD_INPUT),
        (ValidationError, ExitCode.BAD_INPUT),
        (errors.BackendUnavailableError, ExitCode.BACKEND_UNAVAILABLE),
        (errors.BackendNotFoundError, ExitCode.BACKEND_NOT_INSTALLED),
        (errors.BackendLoadError, ExitCode.BACKEND_NOT_INSTALLED),
        (errors.JobTimeoutError, ExitCode.TIMEOUT),
    ]
    for kind, code in table:
        if isinstance(exc, kind):
            return code
    return ExitCode.BACKEND_ERROR
