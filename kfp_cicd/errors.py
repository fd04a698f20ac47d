"""Errors that name what is wrong and what to do about it.

Every user-facing failure raises one of these; the CLI prints the message without a traceback.
"""


class KfpCicdError(Exception):
    """Base class of the errors this suite raises on purpose."""


class DataError(KfpCicdError, ValueError):
    """Bad input, refused before anything is created: a data file that is missing, unreadable or not
    the shape the pipeline needs, or a CLI option or pipeline parameter whose value cannot work
    (the rules: :mod:`kfp_cicd.parameter_validation`)."""


class EnvironmentNotReady(KfpCicdError, RuntimeError):
    """A required interpreter, service or tool is not installed or not reachable."""


class RegistryError(KfpCicdError, RuntimeError):
    """The MLflow model registry refused or failed an operation."""


class DeploymentError(KfpCicdError, RuntimeError):
    """A deployment did not become ready or failed its smoke checks."""
