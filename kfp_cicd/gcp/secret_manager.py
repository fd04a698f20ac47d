"""MLflow credentials from Google Secret Manager, read at task start into the environment MLflow reads.

On Vertex AI there is no Kubernetes Secret to mount; the pipeline parameter ``mlflow_secrets`` names
Secret Manager secret versions instead (``MLFLOW_TRACKING_TOKEN=projects/P/secrets/S/versions/latest``,
comma-separated; the variables are those of the Kubeflow Secret ``mlflow-credentials``). Only the
NAMES travel as parameters (KFP and Vertex record parameters in clear); each task that talks to
MLflow calls :func:`load_mlflow_credentials` first, which reads every version with
``GET https://secretmanager.googleapis.com/v1/{name}:access`` (the task's service account needs
``roles/secretmanager.secretAccessor`` on those secrets) and sets the environment variables. Values
are never logged. ``$KFP_CICD_SECRET_MANAGER_ENDPOINT`` overrides the base URL (tests, private
endpoints).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from typing import Any

from kfp_cicd.gcp.google_api import GoogleApi, GoogleApiError, call, default_credentials
from kfp_cicd.parameter_validation import check_mlflow_secrets, check_secret_version

log = logging.getLogger(__name__)
SECRET_MANAGER_API = GoogleApi(
    "Secret Manager API", "https://secretmanager.googleapis.com", "KFP_CICD_SECRET_MANAGER_ENDPOINT"
)


class SecretUnavailable(GoogleApiError):
    """A secret version could not be read (missing, disabled, or not readable by the task)."""


def access_secret_version(name: str, credentials: Any = None) -> bytes:
    """The payload of secret version ``name`` (``projects/P/secrets/S/versions/V``), checksum verified."""
    name = check_secret_version(name, "secret version")
    try:
        body = call(
            SECRET_MANAGER_API, "GET", f"v1/{name}:access", credentials=credentials, what=f"read {name}"
        )
    except GoogleApiError as exc:
        if exc.code == 404:
            raise SecretUnavailable(
                f"secret version {name} does not exist ({exc}); create it with `gcloud secrets create` "
                "and `gcloud secrets versions add`, or fix the name in mlflow_secrets",
                exc.code,
                exc.status,
            ) from exc
        if exc.code == 403:
            raise SecretUnavailable(
                f"the task's service account may not read {name} ({exc}); grant it "
                "roles/secretmanager.secretAccessor on that secret (docs/platforms/vertex-gke.md)",
                exc.code,
                exc.status,
            ) from exc
        if exc.status == "FAILED_PRECONDITION":
            raise SecretUnavailable(f"secret version {name} is disabled or destroyed ({exc})") from exc
        raise
    payload = body.get("payload") or {}
    try:
        data = base64.b64decode(payload.get("data") or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretUnavailable(f"{name}: the payload is not base64 ({exc})") from exc
    expected = payload.get("dataCrc32c")
    if expected is not None and int(expected) != _crc32c(data):
        raise SecretUnavailable(f"{name}: the payload's CRC32C does not match; it was corrupted in transit")
    return data


def _crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli) of ``data``, as Secret Manager's ``dataCrc32c`` holds it."""
    try:
        import google_crc32c
    except ImportError:  # an image without it: the same checksum in pure Python
        crc = 0xFFFFFFFF
        for byte in data:
            crc ^= byte
            for _ in range(8):
                crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        return crc ^ 0xFFFFFFFF
    return int(google_crc32c.value(data))


def load_mlflow_credentials(mlflow_secrets: str, credentials: Any = None) -> list[str]:
    """Set the environment variables ``mlflow_secrets`` maps to secret versions; the names set.

    ``""`` does nothing (Kubeflow: the Secret ``mlflow-credentials`` provides them; a server without
    authentication needs none). A malformed value is a :class:`~kfp_cicd.errors.DataError` before
    any call. A value ending in a line break (``echo`` into ``gcloud secrets versions add``) has it
    removed.
    """
    mapping = check_mlflow_secrets(mlflow_secrets)
    if not mapping:
        return []
    credentials = default_credentials(credentials)
    values = {}
    for env, name in mapping.items():
        data = access_secret_version(name, credentials)
        try:
            values[env] = data.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise SecretUnavailable(f"{name} (for {env}) is not UTF-8 text") from exc
    os.environ.update(values)  # all or nothing: set only once every secret was read
    for env, name in mapping.items():
        log.info("MLflow credentials: %s from Secret Manager %s", env, name)
    return list(mapping)
