"""Restarts of a node's workers (the ``MaxRestarts`` option) as the backends report them.

torchrun restarts a node's worker group after a worker failed; each restarted worker group records the restart
in the job's workspace (see :func:`kubeflow_trainer.shipping.with_restart_record`): one file per node under
:data:`RESTARTS_DIR`, a line ``<restart count> <unix time>`` per restart. Backends whose jobs write there turn
the records into ``Step.restarts`` and one ``Restarted`` event per restart.

A backend whose nodes cannot share a file with it names another file in :data:`RECORDS_FILE_ENV` (Kubernetes:
the container's termination message, which the kubelet copies into the pod's status when the container ends);
the records are then appended there as lines ``kft-restart <restart count> <unix time>`` (:data:`MARKER`), to
be told apart from the file's other lines. The file must exist: the job never creates it.
"""

from __future__ import annotations

from datetime import datetime, timezone

from kubeflow_trainer.types import Event

RESTARTS_DIR = ".kft/restarts"
"""Directory of the restart records, relative to the job's workspace."""
REASON = "Restarted"
RECORDS_FILE_ENV = "KUBEFLOW_TRAINER_RESTART_RECORDS"
"""Names a file to append a node's restart records to instead of the workspace's (marked lines)."""
MARKER = "kft-restart"
"""First word of a record line in a file named by :data:`RECORDS_FILE_ENV`."""


def parse(text: str, marked: bool = False) -> list[tuple[int, float]]:
    """The (restart count, unix time) records of one node's file; malformed lines are skipped. ``marked``:
    the text is a file named by :data:`RECORDS_FILE_ENV`, where only lines starting with :data:`MARKER` are
    records."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if marked:
            if not is_record(line):
                continue
            parts = parts[1:]
        try:
            out.append((int(parts[0]), float(parts[1])))
        except (IndexError, ValueError):
            continue
    return out


def is_record(line: str) -> bool:
    """Whether ``line`` of a file named by :data:`RECORDS_FILE_ENV` is a restart record."""
    return line.split(" ", 1)[0] == MARKER


def events(step: str, records: list[tuple[int, float]], max_restarts: int | None = None) -> list[Event]:
    """One ``Restarted`` event per record of ``step``."""
    limit = f" of at most {max_restarts}" if max_restarts else ""
    return [
        Event(
            involved_object_kind="Step",
            involved_object_name=step,
            reason=REASON,
            message=(
                f"{step}: a worker failed and torchrun restarted the node's workers (restart {count}{limit}); "
                "the failure is in the step's log"
            ),
            event_time=datetime.fromtimestamp(when, timezone.utc),
        )
        for count, when in records
    ]
