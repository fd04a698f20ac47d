"""A GKE cluster's control plane (endpoint and CA certificate) through the GKE API.

``GET https://container.googleapis.com/v1/projects/P/locations/L/clusters/C`` with the task's Google
credentials (permission ``container.clusters.get``, e.g. ``roles/container.clusterViewer``). The
base URL can be overridden with ``$KFP_CICD_GKE_API_ENDPOINT`` (tests point it at a fake; a user may
point it at a private or regional endpoint).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from kfp_cicd.gcp.google_api import GoogleApi, GoogleApiError, call
from kfp_cicd.parameter_validation import check_gke_cluster

GKE_API = GoogleApi("GKE API", "https://container.googleapis.com", "KFP_CICD_GKE_API_ENDPOINT")
SERVING_STATUSES = ("RUNNING", "RECONCILING", "DEGRADED")  # the control plane answers in these


class GkeClusterNotFound(GoogleApiError):
    """The cluster named does not exist (or the credentials may not see that it does)."""


class GkePermissionDenied(GoogleApiError):
    """The task's service account may not read the cluster."""


@dataclass(frozen=True)
class GkeControlPlane:
    """Where a GKE cluster's Kubernetes API server listens, and the CA that signed its certificate."""

    cluster: str
    host: str
    ca_certificate_pem: bytes
    status: str


def get_control_plane(cluster: str, credentials: Any = None) -> GkeControlPlane:
    """The control plane of ``cluster`` (``projects/P/locations/L/clusters/C``); errors say what to do."""
    cluster = check_gke_cluster(cluster)
    what = f"get GKE cluster {cluster}"
    try:
        body = call(GKE_API, "GET", f"v1/{cluster}", credentials=credentials, what=what)
    except GoogleApiError as exc:
        if exc.code == 404:
            raise GkeClusterNotFound(
                f"GKE cluster {cluster} was not found ({exc}); check the project, the location "
                "(a region for regional clusters, a zone for zonal ones) and the name: "
                "`gcloud container clusters list --format='value(selfLink)'`",
                exc.code,
                exc.status,
            ) from exc
        if exc.code == 403:
            raise GkePermissionDenied(
                f"the task's Google service account may not read GKE cluster {cluster} ({exc}); "
                "grant it roles/container.clusterViewer on the project (permission "
                "container.clusters.get), see docs/platforms/vertex-gke.md",
                exc.code,
                exc.status,
            ) from exc
        raise
    return _control_plane(cluster, body)


def _control_plane(cluster: str, body: dict[str, Any]) -> GkeControlPlane:
    status = str(body.get("status") or "")
    if status and status not in SERVING_STATUSES:
        raise GoogleApiError(
            f"GKE cluster {cluster} is {status}, not RUNNING: its API server cannot take the deployment; "
            "wait until `gcloud container clusters describe` shows RUNNING and rerun"
        )
    endpoint = str(body.get("endpoint") or "")
    encoded = str((body.get("masterAuth") or {}).get("clusterCaCertificate") or "")
    if not endpoint or not encoded:
        raise GoogleApiError(
            f"GKE cluster {cluster} has no endpoint or masterAuth.clusterCaCertificate in the GKE API's "
            "answer; is it still being created?"
        )
    try:
        pem = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GoogleApiError(f"GKE cluster {cluster}: clusterCaCertificate is not base64: {exc}") from exc
    if b"BEGIN CERTIFICATE" not in pem:
        raise GoogleApiError(f"GKE cluster {cluster}: clusterCaCertificate is not a PEM certificate")
    host = endpoint if endpoint.startswith("https://") else f"https://{endpoint}"
    return GkeControlPlane(cluster=cluster, host=host, ca_certificate_pem=pem, status=status)
