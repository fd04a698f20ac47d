"""kfp-cicd: Kubeflow Pipelines components from fresh data to a served endpoint."""

from kfp_cicd.version import __version__

__all__ = ["__version__"]
