"""What a dry run shows is what runs: the TrainJob and Secrets the real API server holds after train() are the
ones client.dry_run(...).request described (the webhook may only add defaults), secrets aside."""

from __future__ import annotations

import base64

from conftest import require

from kubeflow_trainer import (
    BuiltinTrainer,
    Initializer,
    Labels,
    Name,
    S3DatasetInitializer,
    TorchTuneConfig,
    TrainerClient,
)
from kubeflow_trainer_k8s.request import KubernetesJobRequest

SECRET = "s3cr3t-roundtrip-value"


def contains(actual: object, expected: object, path: str = "") -> list[str]:
    """Where ``expected`` (what the request said) is not in ``actual`` (what the server holds)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {actual!r} is not an object"]
        return [d for k, v in expected.items() for d in contains(actual.get(k), v, f"{path}.{k}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: {actual!r} != {expected!r}"]
        return [
            d for i, (a, e) in enumerate(zip(actual, expected, strict=True)) for d in contains(a, e, f"{path}[{i}]")
        ]
    return [] if actual == expected else [f"{path}: {actual!r} != {expected!r}"]


def test_the_trainjob_and_secrets_created_are_the_dry_run_request(plane, k8s_config):
    require(plane, "trainer", "webhooks", "runtimes")
    client = TrainerClient(k8s_config)
    request_args = {
        # A runtime with a dataset-initializer job: the webhook refuses initializers on one without.
        "runtime": "torchtune-llama3.2-1b",
        "trainer": BuiltinTrainer(config=TorchTuneConfig(epochs=1, batch_size=2)),
        "initializer": Initializer(
            dataset=S3DatasetInitializer(
                storage_uri="s3://bucket/data",
                endpoint="http://s3",
                access_key_id="AKIAROUND",
                secret_access_key=SECRET,
            )
        ),
        "options": [Name("kft-roundtrip"), Labels(labels={"team": "kft"})],
    }
    dry = client.dry_run(**request_args)
    request = dry.request
    assert isinstance(request, KubernetesJobRequest)
    assert SECRET not in repr(request) and SECRET not in request.model_dump_json()
    client.train(**request_args)
    try:
        backend = client.backend
        held = backend.custom.get_namespaced_custom_object(  # type: ignore[attr-defined]
            "trainer.kubeflow.org", "v1alpha1", request.namespace, "trainjobs", "kft-roundtrip"
        )
        assert contains(held["spec"], request.trainjob["spec"]) == []
        assert contains(held["metadata"], {k: request.trainjob["metadata"][k] for k in ("name", "labels")}) == []
        assert [s.name for s in request.secrets] == ["kft-roundtrip-dataset-initializer"]
        secret = backend.core.read_namespaced_secret(request.secrets[0].name, request.namespace)  # type: ignore[attr-defined]
        held_data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
        assert held_data == {k: v.get_secret_value() for k, v in request.secrets[0].data.items()}
        assert held_data["SECRET_ACCESS_KEY"] == SECRET
    finally:
        client.delete_job("kft-roundtrip")
