"""The docker backend of the Kubeflow Trainer SDK: not implemented yet (registers no backend)."""
