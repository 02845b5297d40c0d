"""Upstream's module paths ``kubeflow.trainer.backends.*``, as thin aliases; nothing here imports a backend.

Our backends are separate distributions (``kubeflow_trainer_local``, ``kubeflow_trainer_docker``...); these
modules resolve upstream's names from them on first use (:mod:`kubeflow_trainer.lazy`).
"""
