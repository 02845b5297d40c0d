"""The conformance kit for backends (install with ``pip install "trainer-core[testing]"``).

Subclass :class:`BackendConformance` in a pytest module; see its module docstring for the fixtures.
"""

from kubeflow_trainer.testing.conformance import BackendConformance

__all__ = ["BackendConformance"]
