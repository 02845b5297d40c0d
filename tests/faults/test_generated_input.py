"""Bad input generated on real backends: the requests of trainer-core's property test
(packages/trainer-core/tests/test_properties.py) given to a real client's ``dry_run`` and ``train``. Each is
accepted or refused with the SDK's typed errors (pydantic's ValidationError for the types, InvalidRequestError
and subclasses for the request) before anything exists: no job record, process, container, network or volume
of the test's jobs appears. A sample of the accepted requests then runs to completion on the local backend."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from kubeflow_trainer import Name

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packages" / "trainer-core" / "tests"))
from test_properties import attempt, build_request, requests

RUN_SAMPLE = 2
"""Accepted requests actually run (each one is a real local job)."""


def named(options: list[Any], name: str) -> list[Any]:
    """The generated options, with the test's job name (so anything created is found and counted)."""
    return [o for o in options if not isinstance(o, Name)] + [Name(name)]


@pytest.mark.parametrize("backend", ["local", "docker"])
def test_generated_requests_on_a_real_backend(backend, fault):
    scope, client, row = fault("generated requests (hypothesis)", backend)
    accepted: list[tuple[Any, ...]] = []
    refused: dict[str, int] = {}

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(requests)
    def check(spec: dict[str, Any]) -> None:
        request, error = attempt(lambda: build_request(spec))
        if error is None:
            trainer, initializer, options = request
            name = scope.job_name(f"g{len(scope.names)}")
            dry, error = attempt(
                lambda: client.dry_run(trainer=trainer, initializer=initializer, options=named(options, name))
            )
            if error is None:
                assert dry.plan.name == name
                accepted.append((trainer, initializer, named(options, name)))
        if error is not None:
            refused[type(error).__name__] = refused.get(type(error).__name__, 0) + 1
            assert str(error).strip()
        left = {k: v for k, v in scope.counts().items() if v}
        assert not left, f"a dry run or a refusal left {left}"

    check()
    assert accepted and refused, (len(accepted), refused)
    ran = 0
    if backend == "local":
        runnable = [
            a
            for a in accepted
            if a[1] is None and type(a[0]).__name__ == "CustomTrainer" and (a[0].num_nodes or 1) <= 2
        ]
        for generated, _init, options in runnable[:RUN_SAMPLE]:
            trainer = generated.model_copy(update={"packages_to_install": None, "pip_index_urls": None})
            name = client.train(trainer=trainer, options=options)
            job = client.wait_for_job_status(name, {"Complete", "Failed"}, timeout=300, polling_interval=0.5)
            assert job.status == "Complete", job.message
            ran += 1
        assert ran, "no accepted request was runnable"
    row.outcome = f"{len(accepted)} accepted (dry run), {ran} run to Complete; refused: {refused}"
    row.bystander = "n/a"
