"""The conformance kit for backends (install with ``pip install "trainer-core[testing]"``).

:class:`BackendContract` checks the contract with no running engine or cluster (seconds);
:class:`BackendConformance` is the whole kit: the contract plus real jobs. Subclass one in a pytest module;
see their module docstrings for the fixtures.
"""

from kubeflow_trainer.testing.conformance import BackendConformance
from kubeflow_trainer.testing.contract import BackendContract

__all__ = ["BackendConformance", "BackendContract"]
