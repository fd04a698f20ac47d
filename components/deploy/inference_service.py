"""Render the KServe ``InferenceService`` that serves a registered model version.

The manifest points KServe at the model's real storage location and at our ClusterServingRuntime
(``manifests/runtime/cluster_serving_runtime.yaml``), which runs ``python -m kfp_cicd.serving`` in the
runtime image. KServe's storage initializer copies ``storageUri`` to ``/mnt/models`` before the
predictor starts, so the URI must be one it can read: MLflow's own ``models:/`` and
``mlflow-artifacts:/`` URIs are refused here rather than failing later inside the cluster.

The predictor pod is locked down to the Pod Security Standard "restricted" in the manifest itself,
whatever the ClusterServingRuntime says: non-root (the images' user 1000), no privilege
escalation, every capability dropped, the RuntimeDefault seccomp profile and a read-only root
filesystem. The predictor writes only to ``/tmp`` (``HOME`` too: MLflow and torch caches), an
``emptyDir`` the manifest mounts; ``/mnt/models`` is KServe's own volume. Secrets never appear
in it as values: environment variables named like credentials are refused (use the service
account, or a Secret the runtime references).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

from kfp_cicd.errors import DeploymentError
from kfp_cicd.parameter_validation import is_dns_label

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
RUNTIME_NAME = "kfp-cicd-mlflow-pyfunc"
MODEL_FORMAT = "mlflow-pyfunc-kfp-cicd"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
# "Serverless"/"RawDeployment" work on every KServe release; newer releases call them
# "Knative"/"Standard" and still accept the old names.
SCALE_TO_ZERO_MODES = ("Serverless", "Knative")
DEPLOYMENT_MODES = (*SCALE_TO_ZERO_MODES, "RawDeployment", "Standard")
# Schemes KServe's storage initializer downloads from.
STORAGE_SCHEMES = ("s3://", "gs://", "pvc://", "https://", "http://", "hdfs://", "webhdfs://", "file://")
MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_MAX_LABEL = 63
RUN_AS_USER = 1000  # the user of images/runtime/Dockerfile
SCRATCH_VOLUME = "tmp"
SCRATCH_MOUNT = "/tmp"
SCRATCH_SIZE = "1Gi"
# Pod level: the fields only a pod can set (and the defaults for every container in it).
POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_USER,
    "runAsGroup": RUN_AS_USER,
    "fsGroup": RUN_AS_USER,
    "seccompProfile": {"type": "RuntimeDefault"},
}
# Container level: the restricted profile's container fields, repeated so the model container is
# locked down even where a mutating webhook rewrites the pod's.
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_USER,
    "runAsGroup": RUN_AS_USER,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
# Environment variable names that hold credentials: their values must never be in a manifest.
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|ACCESS_KEY|API_KEY|PRIVATE_KEY", re.IGNORECASE)


def check_name(name: str) -> str:
    """An InferenceService name must be a DNS-1035 label (it becomes service and host names)."""
    if not is_dns_label(name, start_with_letter=True):
        raise DeploymentError(
            f"invalid InferenceService name {name!r}: use at most {_MAX_LABEL} lower-case "
            "letters, digits and '-', starting with a letter and ending with a letter or "
            "digit (e.g. 'credit-default')"
        )
    return name


def check_namespace(namespace: str) -> str:
    """A namespace is a DNS-1123 label."""
    if not is_dns_label(namespace):
        raise DeploymentError(
            f"invalid namespace {namespace!r}: use at most {_MAX_LABEL} lower-case "
            "letters, digits and '-', starting and ending with a letter or digit"
        )
    return namespace


def service_name_for(model_name: str) -> str:
    """A valid InferenceService name derived from a registered model name (``Fraud_Model.v2`` →
    ``fraud-model-v2``), so pipelines need not ask for a second name."""
    name = re.sub(r"[^a-z0-9-]+", "-", (model_name or "").lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalpha():
        name = f"model-{name}".rstrip("-")
    return check_name(name[:_MAX_LABEL].rstrip("-"))


def check_storage_uri(storage_uri: str) -> str:
    """Refuse locations KServe's storage initializer cannot download, saying what to use instead."""
    if not isinstance(storage_uri, str) or not storage_uri.strip():
        raise DeploymentError(
            "no storage URI given: pass where the model files are (s3://, gs://, pvc://, https:// or file://)"
        )
    if storage_uri.startswith(MLFLOW_SCHEMES):
        raise DeploymentError(
            f"storage URI {storage_uri!r} is an MLflow URI, which KServe's storage initializer cannot "
            "read; resolve the version's real location first (registry.storage_location), and run the "
            "MLflow server with a direct artifact store (s3://, gs://) rather than proxied "
            "mlflow-artifacts:/ so that location is readable from the cluster"
        )
    if not storage_uri.startswith(STORAGE_SCHEMES):
        raise DeploymentError(
            f"storage URI {storage_uri!r} has a scheme KServe cannot download; use one of "
            f"{', '.join(STORAGE_SCHEMES)}"
        )
    return storage_uri


def _check_replicas(min_replicas: int, max_replicas: int, deployment_mode: str) -> None:
    for label, count in (("min_replicas", min_replicas), ("max_replicas", max_replicas)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise DeploymentError(f"{label} must be a non-negative integer, got {count!r}")
    if max_replicas < 1 or max_replicas < min_replicas:
        raise DeploymentError(
            f"max_replicas ({max_replicas}) must be at least 1 and at least min_replicas ({min_replicas})"
        )
    if min_replicas == 0 and deployment_mode not in SCALE_TO_ZERO_MODES:
        raise DeploymentError(
            f"min_replicas=0 (scale to zero) needs deployment_mode 'Serverless'; "
            f"{deployment_mode} keeps at least one replica"
        )


def _check_string_map(label: str, values: dict | None) -> dict[str, str]:
    """Labels and annotations are string-to-string maps; refuse anything else early."""
    values = dict(values or {})
    bad = {k: v for k, v in values.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise DeploymentError(f"{label} must map strings to strings; fix {bad}")
    return values


def _check_labels(labels: dict | None) -> dict[str, str]:
    """Label values are at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric."""
    labels = _check_string_map("labels", labels)
    bad = {k: v for k, v in labels.items() if len(v) > _MAX_LABEL or not _LABEL_VALUE.match(v)}
    if bad:
        raise DeploymentError(
            f"invalid label value(s) {bad}: at most {_MAX_LABEL} letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit; put longer text in "
            "annotations"
        )
    return labels


def _check_no_secret_values(env: dict[str, str]) -> None:
    """Refuse credentials as plain values: a manifest is written to the pipeline's artifacts."""
    secret = sorted(name for name in env if _SECRET_NAME.search(name))
    if secret:
        raise DeploymentError(
            f"environment variable(s) {secret} look like credentials and would be written "
            "into the InferenceService manifest in plain text; give the predictor its "
            "credentials through its service account (service_account) or a Secret "
            "reference, never as a value"
        )


def render_inference_service(
    *,
    name: str,
    namespace: str,
    storage_uri: str,
    runtime_image: str | None = None,
    model_format: str = MODEL_FORMAT,
    service_account: str | None = None,
    min_replicas: int = 1,
    max_replicas: int = 1,
    deployment_mode: str = "Serverless",
    resources: dict | None = None,
    labels: dict | None = None,
    annotations: dict | None = None,
    env: dict | None = None,
) -> dict[str, Any]:
    """The ``serving.kserve.io/v1beta1`` InferenceService manifest, as a dict ready for YAML or the API.

    ``runtime_image`` overrides the ClusterServingRuntime's image (pin it to the pipeline's image
    tag); ``resources`` is a Kubernetes ``ResourceRequirements`` dict; ``service_account`` carries
    the credentials the storage initializer needs for s3:// or gs://; ``env`` adds environment
    variables to the predictor container (e.g. ``MODEL_DIGEST``, which the predictor verifies).
    """
    check_name(name)
    check_namespace(namespace)
    check_storage_uri(storage_uri)
    if deployment_mode not in DEPLOYMENT_MODES:
        raise DeploymentError(
            f"unknown deployment_mode {deployment_mode!r}; use one of {', '.join(DEPLOYMENT_MODES)}"
        )
    _check_replicas(min_replicas, max_replicas, deployment_mode)
    annotations = _check_string_map("annotations", annotations)
    if annotations.get(DEPLOYMENT_MODE_ANNOTATION, deployment_mode) != deployment_mode:
        raise DeploymentError(
            f"annotation {DEPLOYMENT_MODE_ANNOTATION} contradicts deployment_mode "
            f"{deployment_mode!r}; set the mode through deployment_mode only"
        )
    annotations[DEPLOYMENT_MODE_ANNOTATION] = deployment_mode
    if not model_format:
        raise DeploymentError(
            f"model_format is empty; use the format our ClusterServingRuntime supports ({MODEL_FORMAT!r})"
        )

    model: dict[str, Any] = {
        "modelFormat": {"name": model_format},
        "runtime": RUNTIME_NAME,
        "storageUri": storage_uri,
    }
    if runtime_image:
        model["image"] = runtime_image
    if resources:
        model["resources"] = dict(resources)
    env = _check_string_map("env", env)
    _check_no_secret_values(env)
    model["env"] = [{"name": key, "value": value} for key, value in {"HOME": SCRATCH_MOUNT, **env}.items()]
    model["securityContext"] = copy.deepcopy(CONTAINER_SECURITY_CONTEXT)
    model["volumeMounts"] = [{"name": SCRATCH_VOLUME, "mountPath": SCRATCH_MOUNT}]
    predictor: dict[str, Any] = {"minReplicas": min_replicas, "maxReplicas": max_replicas}
    if service_account:
        predictor["serviceAccountName"] = service_account
    predictor["securityContext"] = copy.deepcopy(POD_SECURITY_CONTEXT)
    predictor["volumes"] = [{"name": SCRATCH_VOLUME, "emptyDir": {"sizeLimit": SCRATCH_SIZE}}]
    predictor["model"] = model
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    labels = _check_labels(labels)
    if labels:
        metadata["labels"] = labels
    metadata["annotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": {"predictor": predictor}}


def to_yaml(manifest: dict[str, Any]) -> str:
    """The manifest as YAML in its own key order (``kubectl apply -f`` ready)."""
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)
