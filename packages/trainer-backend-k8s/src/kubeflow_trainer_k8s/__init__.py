"""The k8s backend of the Kubeflow Trainer SDK: not implemented yet (registers no backend)."""
