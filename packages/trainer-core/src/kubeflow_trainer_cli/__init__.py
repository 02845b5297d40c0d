"""``kubeflow-trainer``: the command line of the Kubeflow Trainer SDK (a console script of trainer-core).

A package of its own beside ``kubeflow_trainer`` so that ``kubeflow-trainer --help`` and shell completion
import only click: each command imports the SDK when it runs. Exit codes: :mod:`kubeflow_trainer_cli.exits`.
"""

from __future__ import annotations


def main() -> None:
    """Console-script entry point."""
    from kubeflow_trainer_cli.app import cli

    cli(prog_name="kubeflow-trainer")
