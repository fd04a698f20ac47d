"""A ``kubernetes`` client for a GKE cluster, authenticated with the task's Google credentials.

``deploy_target=gke``: the cluster's endpoint and CA certificate come from the GKE API
(:mod:`kfp_cicd.gcp.gke`); every Kubernetes API request carries the task's OAuth access token
(``Authorization: Bearer``), which the client's ``refresh_api_key_hook`` renews before the request
whenever google-auth says it has expired (tokens live about an hour; a rollout with long Ready waits
can outlive one). The CA certificate is written to a private temporary file the TLS layer reads; it
is removed when the client is garbage-collected or the process exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import weakref
from typing import Any

from kfp_cicd.gcp.gke import get_control_plane
from kfp_cicd.gcp.google_api import default_credentials, refreshed_token

log = logging.getLogger(__name__)


class _TokenRefresher:
    """The ``refresh_api_key_hook``: puts a valid access token in the configuration before each call."""

    def __init__(self, credentials: Any) -> None:
        self.credentials = credentials
        self.lock = threading.Lock()
        self.tokens_used = 0

    def __call__(self, configuration: Any) -> None:
        with self.lock:
            token = refreshed_token(self.credentials)
            if token != configuration.api_key.get("authorization"):
                self.tokens_used += 1
                log.info("Kubernetes API: using Google access token #%d", self.tokens_used)
            configuration.api_key["authorization"] = token


def build_gke_api_client(cluster: str, credentials: Any = None) -> Any:
    """A ``kubernetes.client.ApiClient`` for GKE ``cluster`` (``projects/P/locations/L/clusters/C``)."""
    from kubernetes import client

    credentials = default_credentials(credentials)
    plane = get_control_plane(cluster, credentials)
    descriptor, ca_path = tempfile.mkstemp(prefix="kfp-cicd-gke-ca-", suffix=".pem")
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(plane.ca_certificate_pem)
    configuration = client.Configuration()
    configuration.host = plane.host
    configuration.ssl_ca_cert = ca_path
    configuration.verify_ssl = True
    configuration.api_key = {"authorization": ""}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.refresh_api_key_hook = _TokenRefresher(credentials)
    api_client = client.ApiClient(configuration)
    weakref.finalize(api_client, _remove, ca_path)
    log.info("GKE cluster %s: Kubernetes API at %s (status %s)", cluster, plane.host, plane.status)
    return api_client


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
