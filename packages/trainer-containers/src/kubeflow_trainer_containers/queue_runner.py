"""The detached process that starts a queued container job when its turn comes (admission under load).

``python -m kubeflow_trainer_containers.queue_runner <backend> <fd>:<ticket path>``, with
``{"config": <the backend's config>, "request": <the job's ContainerJobRequest, credentials included>}`` as
JSON on stdin (never written to a file). It inherits the ticket's locked descriptor from the client that
submitted the job, so the job keeps its place in the queue when that client exits; it creates and starts the
job when its turn comes, then exits.
"""

from __future__ import annotations

import json
import sys

from kubeflow_trainer.admission import AdmissionQueue
from kubeflow_trainer.registry import default_registry
from kubeflow_trainer_containers.backend import ContainerBackend
from kubeflow_trainer_containers.request import ContainerJobRequest


def main(argv: list[str]) -> int:
    """Entry point (see the module docstring)."""
    backend_name, ticket_arg = argv
    payload = json.loads(sys.stdin.read())
    registry = default_registry()
    spec = registry.get(backend_name)
    config = spec.config_class.model_validate(payload["config"])
    request = ContainerJobRequest.model_validate(payload["request"])
    backend = registry.create(spec, config)
    if not isinstance(backend, ContainerBackend):
        print(f"backend {backend_name!r} is not a container backend", flush=True)
        return 2
    fd, path = ticket_arg.split(":", 1)
    try:
        started = backend.run_queued(request, AdmissionQueue(backend._queue().directory).adopt(path, int(fd)))
    finally:
        backend.close()
    print(
        f"job {request.name}: {'started' if started else 'not started (deleted while it waited, or see get_job)'}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
