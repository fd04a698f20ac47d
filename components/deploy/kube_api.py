"""InferenceServices through the real ``kubernetes`` client, with errors that say what to fix.

Every call goes through :class:`InferenceServiceApi`, which turns the API server's answers into
:class:`DeploymentError` messages an operator can act on:

- 403: names the RBAC verb and resource that are missing and the Role that grants them
  (``manifests/base/rbac.yaml``);
- 404 on the API group itself: the InferenceService CRD (KServe) is not installed;
- 409: someone else changed the object while we were deploying;
- no answer at all: the cluster is unreachable (with the address tried).

Updates are get-then-patch with a JSON merge patch carrying the ``resourceVersion`` read just
before, so a concurrent change is refused instead of silently overwritten.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from kfp_cicd.errors import DeploymentError

log = logging.getLogger(__name__)
GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
RESOURCE = f"{PLURAL}.{GROUP}"
FIELD_MANAGER = "kfp-cicd-deploy"
REQUEST_TIMEOUT_SECONDS = 30.0
RBAC_HINT = (
    "grant it with the Role and RoleBinding in manifests/base/rbac.yaml "
    "(kubectl apply -k manifests/overlays/example, after setting the namespace and the pipeline "
    "runner's service account)"
)
GKE_RBAC_HINT = (
    "on GKE the caller is the Vertex task's Google service account: bind the Role in "
    "manifests/base/rbac.yaml to it (RoleBinding subject kind User, name = the service account's "
    "email), or grant roles/container.developer on the project; see docs/platforms/vertex-gke.md"
)


class ClusterUnreachable(DeploymentError):
    """No answer from the Kubernetes API server."""


class InferenceServiceCrdMissing(DeploymentError):
    """The cluster does not serve the serving.kserve.io/v1beta1 API: KServe is not installed."""


class ForbiddenByRbac(DeploymentError):
    """The service account may not perform a verb on InferenceServices."""


@dataclass(frozen=True)
class ClusterConnection:
    """How to reach the API server: an explicit host (tests, proxies) or the usual discovery.

    ``host`` empty means: the in-cluster service account when running in a pod, else the
    kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``, optional ``context``).
    """

    host: str = ""
    context: str = ""
    token: str = ""
    verify_ssl: bool = True
    gke_cluster: str = ""
    google_credentials: Any = None

    @property
    def rbac_hint(self) -> str:
        """What to do about a 403, for this kind of connection."""
        return GKE_RBAC_HINT if self.gke_cluster else RBAC_HINT


def build_api_client(connection: ClusterConnection) -> Any:
    """A ``kubernetes.client.ApiClient`` for ``connection``; DeploymentError if no config is found.

    ``gke_cluster`` set: the endpoint and CA come from the GKE API and every request carries the
    task's Google access token, refreshed when it expires (``gke_auth``).
    """
    from kubernetes import client, config

    if connection.gke_cluster:
        from kfp_cicd.components.deploy.gke_auth import build_gke_api_client

        return build_gke_api_client(connection.gke_cluster, connection.google_credentials)
    configuration = client.Configuration()
    if connection.host:
        configuration.host = connection.host.rstrip("/")
        configuration.verify_ssl = connection.verify_ssl
        if connection.token:
            configuration.api_key = {"authorization": connection.token}
            configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(context=connection.context or None, client_configuration=configuration)
    except (config.ConfigException, OSError, TypeError) as exc:
        raise ClusterUnreachable(
            f"no Kubernetes configuration found ({exc}): run the task in a pod with a service account, "
            "set $KUBECONFIG, or pass the API server address (cluster_host)"
        ) from exc
    return client.ApiClient(configuration)


def _status_message(body: Any) -> str:
    """The API server's own message from a Status body (or the raw text)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(body) if isinstance(body, str) else body
        return str(parsed.get("message") or body)
    except (ValueError, AttributeError):
        return str(body or "").strip()[:500]


class InferenceServiceApi:
    """get / create / patch one namespace's InferenceServices with actionable errors."""

    def __init__(self, api_client: Any, namespace: str, rbac_hint: str = RBAC_HINT) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.namespace = namespace
        self.rbac_hint = rbac_hint
        self.objects = client.CustomObjectsApi(api_client)
        self.host = api_client.configuration.host

    def _translate(self, exc: Exception, verb: str, name: str | None = None) -> DeploymentError:
        """A DeploymentError for a failed call (``verb`` is the RBAC verb the call needed)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        target = f"{RESOURCE} {name!r}" if name else RESOURCE
        if isinstance(exc, HTTPError | OSError):
            return ClusterUnreachable(
                f"the Kubernetes API server at {self.host} is unreachable "
                f"({type(exc).__name__}: {exc}); check the cluster address, the "
                "network policy of the pipeline's namespace and that the cluster is up"
            )
        if not isinstance(exc, ApiException):
            return DeploymentError(f"{verb} {target}: {type(exc).__name__}: {exc}")
        message = _status_message(exc.body)
        if exc.status == 401:
            return ForbiddenByRbac(
                f"the Kubernetes API server at {self.host} rejected our credentials (401) "
                f"for {verb} {target}: {message}; check the service account token (on GKE: that the "
                "task's Google credentials are valid and the cluster accepts Google OAuth tokens)"
            )
        if exc.status == 403:
            return ForbiddenByRbac(
                f"forbidden: the service account may not '{verb}' resource '{PLURAL}' in API group "
                f"'{GROUP}' in namespace '{self.namespace}' (missing RBAC verb {verb!r} on {RESOURCE}); "
                f"{self.rbac_hint}. API server said: {message}"
            )
        if exc.status == 409:
            return DeploymentError(
                f"conflict on {verb} {target} in namespace {self.namespace}: it was "
                f"changed by someone else during the deployment ({message}); nothing "
                "was overwritten, rerun the deployment"
            )
        if exc.status == 422:
            return DeploymentError(f"the API server refused {target} as invalid: {message}")
        return DeploymentError(
            f"{verb} {target} in namespace {self.namespace} failed with HTTP {exc.status}: {message}"
        )

    def check_api_available(self) -> None:
        """Discovery of ``serving.kserve.io/v1beta1``: tells a missing CRD from a missing object."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.api_client.call_api(
                f"/apis/{GROUP}/{VERSION}",
                "GET",
                response_type="object",
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except ApiException as exc:
            if exc.status == 404:
                raise InferenceServiceCrdMissing(
                    f"the cluster at {self.host} does not serve {GROUP}/{VERSION} (HTTP 404 on the API "
                    "group): the InferenceService CRD is not installed; install KServe (>= 0.15) and "
                    "apply manifests/ (kubectl apply -k manifests/overlays/example)"
                ) from exc
            raise self._translate(exc, "get") from exc
        except Exception as exc:  # urllib3 / socket errors: the cluster did not answer
            raise self._translate(exc, "get") from exc

    def get(self, name: str) -> dict[str, Any] | None:
        """The InferenceService, or None when it does not exist (the CRD must exist)."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._translate(exc, "get", name) from exc
        except Exception as exc:
            raise self._translate(exc, "get", name) from exc

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create the InferenceService; returns the object the server stored."""
        name = manifest["metadata"]["name"]
        try:
            return self.objects.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                manifest,
                field_manager=FIELD_MANAGER,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except Exception as exc:
            raise self._translate(exc, "create", name) from exc

    def patch(self, name: str, patch: dict[str, Any], resource_version: str | None = None) -> dict[str, Any]:
        """Merge-patch the InferenceService (``null`` deletes a key); optimistic on ``resource_version``."""
        body = json.loads(json.dumps(patch))
        if resource_version:
            body.setdefault("metadata", {})["resourceVersion"] = resource_version
        try:
            return self.objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                body,
                field_manager=FIELD_MANAGER,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except Exception as exc:
            raise self._translate(exc, "patch", name) from exc
