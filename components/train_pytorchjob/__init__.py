"""Multi-node training on the Kubeflow Training Operator: a launcher component creating a PyTorchJob."""
