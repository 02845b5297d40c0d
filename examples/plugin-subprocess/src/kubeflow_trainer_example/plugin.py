"""The plugin module named by the entry point: registers the backend, imports nothing heavy."""

from __future__ import annotations

from collections.abc import Callable

from kubeflow_trainer import BackendSpec, Capability, hookimpl
from kubeflow_trainer_example.config import SubprocessBackendConfig


def _factory(config: SubprocessBackendConfig):  # type: ignore[no-untyped-def]
    from kubeflow_trainer_example.backend import SubprocessBackend  # loaded only when used

    return SubprocessBackend(config)


@hookimpl
def trainer_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="subprocess-example",
            config_class=SubprocessBackendConfig,
            factory=_factory,
            capabilities=frozenset(
                {Capability.PERSISTENCE, Capability.EVENTS, Capability.MULTI_NODE, Capability.OUTPUTS}
            ),
            description="Example: one child Python process per node, no isolation.",
        )
    )
