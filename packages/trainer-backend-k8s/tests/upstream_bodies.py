"""Run with upstream ``kubeflow==0.5.0``'s Python: prints the TrainJob body upstream's KubernetesBackend.train()
sends for each request of upstream_cases.py, as JSON ``{case: body}``.

No cluster: the backend object is made without its constructor and its CustomObjectsApi is replaced by a
recorder of the create call (a fake for the one API call, so that upstream's own train() code builds the body).
argv[1]: JSON of ``{"torch": <ClusterTrainingRuntime>, "torchtune": <ClusterTrainingRuntime>}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import kubeflow.trainer as kf
import kubeflow.trainer.options as kf_options
from kubeflow.trainer.backends.kubernetes.backend import KubernetesBackend
from kubeflow_trainer_api import models
from upstream_cases import cases, names_from


class Recorder:
    """Stands in for CustomObjectsApi: keeps the body of create_namespaced_custom_object."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def create_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, body: Any) -> Any:
        self.bodies.append(body)
        return body


def main() -> None:
    runtime_objects = json.loads(sys.argv[1])
    backend = KubernetesBackend.__new__(KubernetesBackend)
    backend.namespace = "ns"
    backend.custom_api = Recorder()
    parse = backend._KubernetesBackend__get_runtime_from_cr  # upstream's own runtime parsing
    runtimes = {
        key: parse(models.TrainerV1alpha1ClusterTrainingRuntime.from_dict(obj)) for key, obj in runtime_objects.items()
    }
    names = names_from(kf, kf_options)
    out = {}
    for case, kwargs in cases(names).items():
        kwargs["runtime"] = runtimes[kwargs["runtime"]]
        backend.train(**kwargs)
        out[case] = backend.custom_api.bodies[-1]
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
