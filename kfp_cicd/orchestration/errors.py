"""Errors of the orchestration commands, each naming what went wrong and what to do.

They derive from :class:`kfp_cicd.errors.KfpCicdError` so the CLI prints them without a traceback;
the CLI maps them to distinct exit codes CI can rely on (see ``kfp_cicd.orchestration.outcome``).
"""

from kfp_cicd.errors import DataError, KfpCicdError


class OrchestrationError(KfpCicdError):
    """Base class: a remote pipeline service refused or failed an operation."""


class SpecError(OrchestrationError, DataError):
    """A compiled pipeline spec is missing, unreadable or not for the chosen backend."""


class ParameterError(OrchestrationError, DataError):
    """A ``--param`` is unknown, missing, or does not parse as the type the spec declares."""


class AuthenticationError(OrchestrationError):
    """The service rejected the credentials (401) or the identity lacks permission (403)."""


class ServiceUnreachable(OrchestrationError, ConnectionError):
    """The API endpoint could not be reached at all (DNS, refused connection, TLS, timeout)."""


class NotFoundError(OrchestrationError, LookupError):
    """A named pipeline, version, run or schedule does not exist."""


class RunFailed(OrchestrationError):
    """A run that was followed with ``--wait`` ended in a failed, canceled or error state."""
