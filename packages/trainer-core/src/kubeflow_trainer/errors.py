"""The error hierarchy, identical on every backend.

Every error raised by :class:`~kubeflow_trainer.TrainerClient` or by a backend is a :class:`TrainerError`.
The subclasses also derive from the builtin exception that upstream code catches (``ValueError``,
``RuntimeError``, ``TimeoutError`` ...) so code written for the upstream ``kubeflow`` SDK keeps working:
upstream's local and container backends raise ``ValueError`` for a missing job or runtime and its Kubernetes
backend ``RuntimeError``, so :class:`NotFoundError` is a ``LookupError``, a ``ValueError`` and a
``RuntimeError`` on every backend; a taken name and an unreachable engine or API server (upstream's Kubernetes
backend: ``RuntimeError``) are ``RuntimeError`` too.

Every message says what was wrong and how to fix it.
"""

from __future__ import annotations

from typing import Any


class TrainerError(Exception):
    """Base class of every error raised by the SDK and its backends."""


class InvalidRequestError(TrainerError, ValueError):
    """The request is malformed (bad field value, unknown option, unknown runtime...).

    Raised before anything is started.
    """


class UnsupportedFeatureError(InvalidRequestError):
    """The request needs a capability the selected backend does not declare.

    Raised before anything is started. ``missing`` holds the capability names.
    """

    def __init__(self, message: str, *, backend: str = "", missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.backend = backend
        self.missing = missing


class FreeNameError(InvalidRequestError):
    """The training function uses names that would not exist in the job (an undefined global, a notebook
    helper, a module of the user's project the job lacks). ``names`` lists them. Raised at submit time."""

    def __init__(self, message: str, names: tuple[str, ...]) -> None:
        super().__init__(message)
        self.names = names


class WorkspaceError(InvalidRequestError):
    """The workspace cannot be shipped as asked (missing directory, bad pattern, unreadable file)."""


class WorkspaceTooLargeError(WorkspaceError):
    """The workspace is larger than the selected backend takes. ``limit`` and ``size`` are in bytes."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class NotFoundError(TrainerError, LookupError, ValueError, RuntimeError):
    """A named object (job, runtime, step) does not exist.

    Also a ``ValueError`` (what upstream's local and container backends raise) and a ``RuntimeError`` (what
    upstream's Kubernetes backend raises), so ``except ValueError`` / ``except RuntimeError`` catch it.
    """


class JobNotFoundError(NotFoundError):
    """No job with this name exists on the backend."""

    def __init__(self, name: str, backend: str = "", hint: str = "") -> None:
        where = f" on backend '{backend}'" if backend else ""
        msg = f"TrainJob '{name}' not found{where}."
        msg += f" {hint}" if hint else " List existing jobs with TrainerClient.list_jobs()."
        super().__init__(msg)
        self.name = name


class RuntimeNotFoundError(NotFoundError, InvalidRequestError):
    """No runtime with this name exists."""

    def __init__(self, name: str, available: list[str] | tuple[str, ...] = ()) -> None:
        msg = f"Runtime '{name}' not found."
        if available:
            msg += f" Available runtimes: {', '.join(sorted(available))}."
        super().__init__(msg)
        self.name = name


class StepNotFoundError(NotFoundError, InvalidRequestError):
    """The job exists but has no step with this name."""

    def __init__(self, job: str, step: str, available: list[str]) -> None:
        super().__init__(
            f"TrainJob '{job}' has no step '{step}'. Its steps are: {', '.join(available) or '(none yet)'}."
        )


class AlreadyExistsError(TrainerError, RuntimeError):
    """A job with this name already exists. Pick another name or delete the old job first."""

    def __init__(self, name: str, backend: str = "") -> None:
        where = f" on backend '{backend}'" if backend else ""
        super().__init__(
            f"TrainJob '{name}' already exists{where}. Choose another name with options=[Name(...)] "
            f"or delete the existing job with TrainerClient.delete_job('{name}')."
        )
        self.name = name


class JobFailedError(TrainerError, RuntimeError):
    """The job reached ``Failed`` while waiting for another status.

    ``job`` is the :class:`~kubeflow_trainer.types.TrainJob` as last seen.
    """

    def __init__(self, message: str, job: Any = None) -> None:
        super().__init__(message)
        self.job = job


class JobTimeoutError(TrainerError, TimeoutError):
    """Waiting for a job status did not finish within the timeout."""

    def __init__(self, message: str, job: Any = None) -> None:
        super().__init__(message)
        self.job = job


class BackendUnavailableError(TrainerError, ConnectionError, RuntimeError):
    """The backend's engine or API cannot be reached (daemon down, API server unreachable...)."""


class BackendError(TrainerError, RuntimeError):
    """The backend failed in a way not covered by another error (the message carries its details)."""


class BackendNotFoundError(TrainerError, LookupError):
    """No installed backend has the requested name."""


class BackendLoadError(TrainerError, ImportError):
    """The plugin that provides the requested backend failed to load, or registered it wrongly."""


class BackendConflictError(BackendLoadError):
    """Two installed distributions register the same backend name."""


class BackendNotInstalledError(BackendLoadError, ModuleNotFoundError):
    """A name that a backend distribution provides (e.g. ``LocalProcessBackendConfig``) was asked for, but that
    distribution is not installed. The message names the ``pip install`` that provides it."""
