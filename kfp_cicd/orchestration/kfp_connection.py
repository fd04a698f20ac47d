"""A connected ``kfp.Client`` whose failures become clear, secret-free errors.

``kfp.Client`` retries its health check five times, five seconds apart, on any API error, including
a 401 that will never succeed; the subclass here checks once and the caller gets an
:class:`AuthenticationError` at once. Every call goes through :meth:`KfpConnection.call`, which
turns ``ApiException`` and connection errors into errors naming the host and what to do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import kfp
import kfp_server_api
import urllib3

from kfp_cicd.orchestration.auth import KfpAuth, redact
from kfp_cicd.orchestration.errors import (
    AuthenticationError,
    NotFoundError,
    OrchestrationError,
    ServiceUnreachable,
)

LOG = logging.getLogger(__name__)
T = TypeVar("T")


class _SingleCheckClient(kfp.Client):
    """``kfp.Client`` whose health check makes one attempt (errors surface immediately)."""

    def get_kfp_healthz(self, sleep_duration: int = 5) -> kfp_server_api.V2beta1GetHealthzResponse:
        return self._healthz_api.healthz_service_get_healthz()


class KfpConnection:
    """The KFP API of one host, reached with one authentication method."""

    def __init__(
        self,
        auth: KfpAuth,
        namespace: str | None = None,
        ui_host: str | None = None,
        ssl_ca_cert: str | None = None,
    ) -> None:
        self.auth = auth
        self.namespace = namespace or None
        self._secrets = auth.secrets()
        kwargs = auth.client_kwargs()
        if namespace:
            kwargs["namespace"] = namespace
        if ssl_ca_cert:
            kwargs["ssl_ca_cert"] = ssl_ca_cert
        kwargs["ui_host"] = ui_host
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP >= 2.0.0-beta.2"
            self.client: kfp.Client = self.call("connect", lambda: _SingleCheckClient(**kwargs))
        self.health = self.call("health check", self.client.get_kfp_healthz)
        if not isinstance(self.health, kfp_server_api.V2beta1GetHealthzResponse):
            raise AuthenticationError(
                f"{self.where} answered the health check with a non-API page (a login page?); "
                "authenticate with --token/$KFP_CICD_KFP_TOKEN or point --host at the KFP API"
            )
        LOG.debug("connected: %s (multi-user: %s)", auth.describe(), self.health.multi_user)

    @property
    def where(self) -> str:
        return self.auth.host or "the KFP API"

    def ui_link(self, fragment: str) -> str:
        """A link into the KFP UI (``fragment`` like ``/runs/details/<id>``)."""
        return f"{self.client._get_url_prefix()}/#{fragment}"

    def call(self, operation: str, func: Callable[[], T]) -> T:
        """Run one API call; translate its failures into orchestration errors.

        ``kfp.Client`` prints "Run details: …" lines to stdout; they go to stderr here so stdout
        carries only the command's result (``--output json`` stays parseable).
        """
        try:
            with contextlib.redirect_stdout(sys.stderr):
                return func()
        except kfp_server_api.ApiException as exc:
            raise self._api_error(operation, exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ServiceUnreachable(
                redact(
                    f"cannot reach {self.where} during {operation} ({type(exc).__name__}: {exc}); "
                    "check --host "
                    "(e.g. http://localhost:8080 with `kubectl port-forward -n kubeflow svc/ml-pipeline-ui "
                    "8080:80`), the network and TLS settings",
                    self._secrets,
                )
            ) from None

    def _api_error(self, operation: str, exc: kfp_server_api.ApiException) -> OrchestrationError:
        detail = redact(_server_message(exc), self._secrets)
        if exc.status == 401:
            return AuthenticationError(
                f"{self.where} rejected the credentials during {operation} (401 Unauthorized: {detail}); "
                "pass a valid token with --token or $KFP_CICD_KFP_TOKEN, use --token-file, or run "
                "in-cluster with the service-account token KFP projects"
            )
        if exc.status == 403:
            namespace = f" in namespace {self.namespace!r}" if self.namespace else ""
            return AuthenticationError(
                f"{self.where} refused {operation}{namespace} (403 Forbidden: {detail}); the identity lacks "
                "permission: check --namespace and that the user or service account is a contributor "
                "of that profile"
            )
        if exc.status == 404:
            return NotFoundError(f"{operation}: not found on {self.where} (404: {detail})")
        return OrchestrationError(f"{self.where} failed {operation} ({exc.status} {exc.reason}: {detail})")


def _server_message(exc: kfp_server_api.ApiException) -> str:
    """The server's error message from a KFP API error body (JSON ``message``/``error``) or its text."""
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body.strip()[:300] or str(exc.reason)
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or data)[:300]
    return str(data)[:300]
