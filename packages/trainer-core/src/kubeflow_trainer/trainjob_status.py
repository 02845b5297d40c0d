"""``update_trainjob_status``: the training function reports progress and metrics to its job's status.

Called inside a training function, on every backend::

    def train():
        from kubeflow_trainer import update_trainjob_status
        for epoch in range(10):
            ...
            update_trainjob_status(progress_percent=(epoch + 1) * 10, metrics={"loss": loss})

and seen by the submitting side in ``TrainerClient.get_job(name).trainer_status``. The channel depends on
where the job runs, chosen from the job's environment:

- ``KUBEFLOW_TRAINER_SERVER_URL`` (set by the Kubeflow Trainer controller in TrainJob pods when its
  ``TrainJobStatus`` feature gate is on): an HTTPS POST of ``{"trainerStatus": ...}`` with the pod's projected
  service-account token (``KUBEFLOW_TRAINER_SERVER_TOKEN``) and CA (``KUBEFLOW_TRAINER_SERVER_CA_CERT``), at most
  one every 5 seconds, as upstream;
- ``KUBEFLOW_TRAINER_STATUS_FILE`` (set by the local, Docker and Podman backends): the same JSON document,
  written atomically to that file in the job's workspace, which ``get_job`` reads. Every call is written (no
  throttle: a file write is cheap).

Like upstream's it never raises: it returns ``True`` when the update was recorded and ``False`` otherwise
(not inside a job, throttled, or the channel failed; the reason is logged).

Standard library only: the SDK ships this file into jobs whose environment lacks trainer-core
(:mod:`kubeflow_trainer.jobside`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the shipped copy runs without trainer-core
    from kubeflow_trainer.types import TrainerStatus

SERVER_URL_ENV = "KUBEFLOW_TRAINER_SERVER_URL"
SERVER_CA_ENV = "KUBEFLOW_TRAINER_SERVER_CA_CERT"
SERVER_TOKEN_ENV = "KUBEFLOW_TRAINER_SERVER_TOKEN"
STATUS_FILE_ENV = "KUBEFLOW_TRAINER_STATUS_FILE"
"""Where the local and container backends have the job write its status (a path inside the job)."""
STATUS_FILE = ".kft/trainer-status.json"
"""The status file's path relative to the job's workspace."""

MIN_UPDATE_INTERVAL_SECONDS = 5.0
"""Upstream's throttle for the controller's status server."""
MAX_METRICS = 256
_TOKEN_TTL_SECONDS = 300.0

_logger = logging.getLogger(__name__)
_lock = threading.Lock()
_last_post = float("-inf")
_token: tuple[str, float] | None = None


def status_document(
    progress_percent: int | None,
    estimated_remaining_seconds: int | None,
    metrics: dict[str, float | int | str] | None,
) -> dict[str, Any]:
    """The ``{"trainerStatus": ...}`` body upstream posts: clamped values, metrics as name/value strings."""
    status: dict[str, Any] = {"lastUpdatedTime": datetime.now(timezone.utc).isoformat()}
    if progress_percent is not None:
        status["progressPercentage"] = max(0, min(100, int(progress_percent)))
    if estimated_remaining_seconds is not None:
        status["estimatedRemainingSeconds"] = max(0, int(estimated_remaining_seconds))
    if metrics:
        if len(metrics) > MAX_METRICS:
            _logger.warning("metrics dict has %d entries, truncating to %d (SDK limit)", len(metrics), MAX_METRICS)
            metrics = dict(list(metrics.items())[:MAX_METRICS])
        status["metrics"] = [{"name": str(k), "value": str(v)} for k, v in metrics.items()]
    return {"trainerStatus": status}


def _write_file(path: str, document: dict[str, Any]) -> bool:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".trainer-status.", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)
        os.replace(tmp, path)  # readers see the old or the new document, never a torn one
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def _read_token(path: str | None) -> str | None:
    global _token
    now = time.monotonic()
    if _token and now - _token[1] < _TOKEN_TTL_SECONDS:
        return _token[0]
    if not path or not os.path.exists(path):
        return None
    with open(path) as handle:
        _token = (handle.read().strip(), now)
    return _token[0]


def _post(url: str, document: dict[str, Any]) -> bool:
    global _last_post
    import ssl
    import urllib.error
    import urllib.request

    with _lock:
        if time.monotonic() - _last_post < MIN_UPDATE_INTERVAL_SECONDS:
            return False
        token = _read_token(os.environ.get(SERVER_TOKEN_ENV))
        if not token:
            _logger.debug("No authentication token available")
            return False
        ca_file = os.environ.get(SERVER_CA_ENV)
        context = ssl.create_default_context(cafile=ca_file if ca_file and os.path.exists(ca_file) else None)
        request = urllib.request.Request(
            url,
            data=json.dumps(document).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as response:
                ok = bool(response.status == 200)
        except urllib.error.HTTPError as exc:
            _logger.warning("Status update failed: HTTP %s", exc.code)
            return False
        if ok:
            _last_post = time.monotonic()
        return ok


def update_trainjob_status(
    progress_percent: int | None = None,
    estimated_remaining_seconds: int | None = None,
    metrics: dict[str, float | int | str] | None = None,
) -> bool:
    """Report training progress to the job's status; safe to call anywhere, never raises.

    Args:
        progress_percent: Completion percentage (clamped to 0-100).
        estimated_remaining_seconds: Estimated seconds left (at least 0).
        metrics: Metric name -> value; values are stored as strings, at most 256 entries.

    Returns:
        True if the update was recorded, False otherwise (not in a job, throttled, or the channel failed).
    """
    try:
        document = status_document(progress_percent, estimated_remaining_seconds, metrics)
        url = os.environ.get(SERVER_URL_ENV)
        if url:
            return _post(url, document)
        path = os.environ.get(STATUS_FILE_ENV)
        if path:
            return _write_file(path, document)
        return False
    except Exception as exc:  # upstream's contract: never raise into the training loop
        _logger.warning("Failed to record the TrainJob status: %s", exc)
        return False


def trainer_status_from_json(text: str | bytes | None) -> TrainerStatus | None:
    """The :class:`~kubeflow_trainer.types.TrainerStatus` in a status document (``None`` if absent or torn).

    Used by the backends that read the status file.
    """
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return trainer_status_from_api(data.get("trainerStatus") if isinstance(data, dict) else None)


def trainer_status_from_api(status: Any) -> TrainerStatus | None:
    """A :class:`~kubeflow_trainer.types.TrainerStatus` from a ``trainerStatus`` object (camelCase keys)."""
    from kubeflow_trainer.types import TrainerStatus

    if not isinstance(status, dict):
        return None
    metrics = status.get("metrics") or []
    try:
        return TrainerStatus(
            progress_percentage=status.get("progressPercentage"),
            estimated_remaining_seconds=status.get("estimatedRemainingSeconds"),
            metrics={str(m["name"]): str(m["value"]) for m in metrics if isinstance(m, dict) and "name" in m},
            last_updated_time=status.get("lastUpdatedTime"),
        )
    except ValueError:
        return None
