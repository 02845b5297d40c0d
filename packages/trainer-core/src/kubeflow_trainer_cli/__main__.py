"""``python -m kubeflow_trainer_cli``: the same as ``kubeflow-trainer``."""

from kubeflow_trainer_cli import main

main()
