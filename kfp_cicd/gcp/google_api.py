"""Google Cloud REST calls with the task's own credentials, and their errors in plain words.

Every call uses ``google.auth.default()`` (on Vertex: the pipeline job's service account; locally:
``gcloud auth application-default login`` or ``$GOOGLE_APPLICATION_CREDENTIALS``) through
google-auth's :class:`~google.auth.transport.requests.AuthorizedSession`, which adds the OAuth
access token and refreshes it when it expires. Each API's base URL can be overridden with an
environment variable (the tests point them at local fakes; a user can point them at a private
endpoint such as ``https://container.private.googleapis.com``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from kfp_cicd.errors import DeploymentError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
REQUEST_TIMEOUT_SECONDS = 30.0


class GoogleApiError(DeploymentError):
    """A Google API refused or failed a call; ``code`` and ``status`` are Google's."""

    def __init__(self, message: str, code: int = 0, status: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class GoogleCredentialsMissing(GoogleApiError):
    """No Google credentials were found in the task's environment."""


@dataclass(frozen=True)
class GoogleApi:
    """One Google REST API: its default base URL and the environment variable overriding it."""

    title: str
    default_base: str
    env_var: str

    @property
    def base_url(self) -> str:
        """The base URL in use (the override when set), without a trailing slash."""
        return (os.environ.get(self.env_var) or self.default_base).rstrip("/")


def default_credentials(credentials: Any = None) -> Any:
    """``credentials``, or the environment's (google.auth.default with the cloud-platform scope)."""
    if credentials is not None:
        return credentials
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        found, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except DefaultCredentialsError as exc:
        raise GoogleCredentialsMissing(
            f"no Google credentials found ({exc}); on Vertex the task runs as the pipeline job's "
            "service account; elsewhere run `gcloud auth application-default login` or set "
            "$GOOGLE_APPLICATION_CREDENTIALS"
        ) from exc
    return found


def refreshed_token(credentials: Any) -> str:
    """A valid OAuth access token of ``credentials``, refreshed first when missing or expired."""
    from google.auth.credentials import TokenState
    from google.auth.exceptions import RefreshError, TransportError
    from google.auth.transport.requests import Request

    if credentials.token_state is not TokenState.FRESH:  # missing, expired, or within 225 s of it
        try:
            credentials.refresh(Request())
        except (RefreshError, TransportError) as exc:
            raise GoogleApiError(
                f"could not get a Google access token ({exc}); check the task's service account "
                "and that the metadata server / token endpoint is reachable"
            ) from exc
    return str(credentials.token)


def error_of(response: Any) -> tuple[int, str, str]:
    """(code, status, message) of a Google error answer (``{"error": {code, status, message}}``)."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    message = str(error.get("message") or response.text[:500] or response.reason)
    return int(error.get("code") or response.status_code), str(error.get("status") or ""), message


def call(
    api: GoogleApi, method: str, path: str, *, credentials: Any = None, body: Any = None, what: str
) -> dict[str, Any]:
    """``method`` ``api.base_url + path`` with the task's credentials; the parsed JSON answer.

    Raises :class:`GoogleApiError` naming ``what`` was attempted and Google's own message; the
    caller adds what to do for the codes it knows (403: which role, 404: which name).
    """
    import requests
    from google.auth.exceptions import RefreshError, TransportError
    from google.auth.transport.requests import AuthorizedSession

    url = f"{api.base_url}/{path.lstrip('/')}"
    session = AuthorizedSession(default_credentials(credentials))
    try:
        response = session.request(
            method,
            url,
            data=None if body is None else json.dumps(body),
            headers={"Content-Type": "application/json"} if body is not None else None,
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
    except (RefreshError, TransportError) as exc:
        raise GoogleApiError(f"{what}: could not get a Google access token: {exc}") from exc
    except requests.RequestException as exc:
        raise GoogleApiError(
            f"{what}: the {api.title} at {api.base_url} is unreachable ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        session.close()
    if response.status_code >= 400:
        code, status, message = error_of(response)
        raise GoogleApiError(
            f"{what}: the {api.title} answered HTTP {code} {status}: {message}", code, status
        )
    try:
        return response.json()
    except ValueError as exc:
        raise GoogleApiError(f"{what}: the {api.title} answered without JSON: {response.text[:300]}") from exc
