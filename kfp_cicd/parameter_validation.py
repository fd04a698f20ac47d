"""Checks of the values users pass to the CLI and the pipelines, before anything is created.

A bad URI, cron expression, percentage or Kubernetes name otherwise surfaces late and far away: a
run that fails an hour in, a schedule the server stores but never fires, an InferenceService the
API server rejects after the model was registered. Each function here checks one kind of value,
returns it (normalised where that is unambiguous) and raises :class:`DataError` naming the
parameter, the value, the rule and an example. The CLI calls them before it contacts any service;
components can call the same functions on their inputs.

:func:`check_pipeline_arguments` applies the right check to each pipeline parameter by name (the
pipelines declare which: ``kfp_cicd.pipelines.parameters.RULES``) and reports every problem at once.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from kfp_cicd.data.tables import FILESYSTEM_PACKAGES, SUFFIXES
from kfp_cicd.errors import DataError
from kfp_cicd.security.secret_scan import redact_url_credentials

#: Longest text value accepted anywhere (paths, URLs, names): longer is garbage or an attack.
MAX_TEXT_LENGTH = 2048
#: Object stores a table, schema or statistics file may live on (fsspec protocols), plus file://.
OBJECT_STORE_SCHEMES = frozenset({*FILESYSTEM_PACKAGES, "file"})
#: MLflow tracking URI schemes: a server, or a store the client opens itself.
TRACKING_SCHEMES = frozenset(
    {"http", "https", "databricks", "sqlite", "file", "postgresql", "mysql", "mssql"}
)
#: Kubernetes label and name limits.
MAX_DNS_LABEL = 63
#: Registered model names (MLflow allows more; URIs and Kubernetes names need plain ones).
MAX_MODEL_NAME = 255
MAX_DNS_SUBDOMAIN = 253
#: A new version's share of traffic while it is checked: all of it (100) skips the split.
CANARY_PERCENT_RANGE = (1, 100)

_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_URL_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^/@\s]*@")  # user:password@
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_HOST = re.compile(r"^[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9])?(\.[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9])?)*$")
# Docker: a registry host[:port] with optional path components; a tag of at most 128 characters.
_REGISTRY = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# Kubernetes resource quantities: 500m, 1, 1.5, 2Gi, 512Mi, 1e3.
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


_GCP_PROJECT = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_GCP_REGION = re.compile(r"^[a-z]+(-[a-z]+)+[0-9]+$")
_SA_EMAIL = re.compile(r"^[a-z0-9][-a-z0-9._]{0,99}@[a-z0-9][-a-z0-9.]*[a-z0-9]$")
_VERTEX_JOB_ID = re.compile(r"^[a-z][-a-z0-9]{0,127}$")


def _fail(name: str, value: Any, rule: str) -> DataError:
    shown = repr(redact_url_credentials(value) if isinstance(value, str) else value)
    shown = shown if len(shown) <= 120 else shown[:117] + "...'"
    return DataError(f"{name} {shown} is not valid: {rule}")


def require_text(value: Any, name: str, *, max_length: int = MAX_TEXT_LENGTH) -> str:
    """A non-empty string without control characters (NUL, newlines...) and not absurdly long."""
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, value, "give a non-empty value")
    if _CONTROL.search(value):
        raise _fail(name, value, "it contains a control character (NUL, tab, line break...); remove it")
    if len(value) > max_length:
        raise _fail(name, value, f"it is {len(value)} characters long; at most {max_length} are allowed")
    if value != value.strip():
        raise _fail(name, value, "it has leading or trailing spaces; remove them")
    return value


def _matching(value: Any, name: str, pattern: re.Pattern[str], *, max_length: int, rule: str) -> str:
    """``value`` as text when ``pattern`` matches it; else DataError stating ``rule``."""
    text = require_text(value, name, max_length=max_length)
    if not pattern.match(text):
        raise _fail(name, value, rule)
    return text


def _scheme(value: str) -> str:
    return value.split("://", 1)[0].lower() if "://" in value else ""


def check_location(
    value: Any,
    name: str,
    *,
    suffixes: tuple[str, ...] = (),
    schemes: frozenset[str] = OBJECT_STORE_SCHEMES,
    local: bool = True,
) -> str:
    """A local path or an object-store URL (``gs://bucket/key``, ``s3://bucket/key``, ``file://``).

    ``suffixes``: the name must end with one of them (case-insensitive); ``local``: plain paths
    are allowed (a pipeline on a cluster cannot read the submitting machine's disk).
    """
    text = require_text(value, name)
    scheme = _scheme(text)
    examples = "gs://bucket/path, s3://bucket/path" + (" or a local path" if local else "")
    if not scheme:
        if ":" in text.split("/", 1)[0] and not _WINDOWS_DRIVE.match(text):
            raise _fail(name, value, f"it looks like a URL without '//'; use {examples}")
        if not local:
            raise _fail(name, value, f"a cluster cannot read a local path; use {examples}")
    elif scheme not in schemes:
        allowed = ", ".join(sorted(f"{s}://" for s in schemes)) + (" or a local path" if local else "")
        raise _fail(name, value, f"unsupported scheme '{scheme}://'; use one of {allowed}")
    elif scheme != "file":
        bucket, _, key = text.split("://", 1)[1].partition("/")
        if not is_bucket_name(bucket):
            raise _fail(
                name,
                value,
                f"'{bucket}' is not a bucket name (3-222 lower-case letters, digits, "
                "'.', '-', '_'); write it as scheme://bucket/path",
            )
        if suffixes and not key:
            raise _fail(name, value, "it names a bucket, not a file in it")
    if suffixes and not text.lower().endswith(suffixes):
        raise _fail(name, value, f"the file must end with one of {', '.join(suffixes)}")
    return text


def check_table_location(value: Any, name: str) -> str:
    """A data table: ``.csv``, ``.csv.gz`` or ``.parquet``, local or on an object store."""
    return check_location(value, name, suffixes=tuple(suffix for suffix, _, _ in SUFFIXES))


def check_pipeline_root(
    value: Any, name: str = "--pipeline-root", *, schemes: tuple[str, ...] = ("gs", "s3", "minio")
) -> str:
    """Where runs keep their artifacts: an object-store prefix (``gs://bucket/runs``)."""
    return check_location(value, name, schemes=frozenset(schemes), local=False)


def check_server_url(value: Any, name: str) -> str:
    """An ``http(s)://host[:port][/path]`` URL of a server (KFP API, MLflow, KServe)."""
    text = require_text(value, name)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _fail(name, value, f"it is not a URL ({exc}); write http(s)://host[:port]") from None
    if parts.scheme not in ("http", "https"):
        raise _fail(name, value, "a server URL starts with http:// or https:// (e.g. http://localhost:8080)")
    if not parts.hostname or not (_HOST.match(parts.hostname) or _is_ip(parts.hostname)):
        raise _fail(name, value, "it has no valid host name (e.g. http://ml-pipeline.kubeflow:8888)")
    if port == 0:
        raise _fail(name, value, "port 0 cannot be connected to")
    if parts.username or parts.password:
        raise _fail(name, value, "put credentials in a token or secret, not in the URL")
    if " " in text:
        raise _fail(name, value, "a URL cannot contain spaces")
    return text.rstrip("/")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_tracking_uri(value: Any, name: str = "mlflow_tracking_uri") -> str:
    """An MLflow tracking URI: ``http(s)://`` server, ``sqlite:///file.db``, ``databricks``, a path."""
    text = require_text(value, name)
    match = _URI_SCHEME.match(text)
    if text == "databricks" or match is None or _WINDOWS_DRIVE.match(text):
        return text  # Databricks, or a local directory (MLflow's file store)
    scheme = match.group(1).lower().split("+", 1)[0]  # postgresql+psycopg2 -> postgresql
    if scheme not in TRACKING_SCHEMES:
        raise _fail(
            name,
            value,
            f"unsupported scheme '{scheme}:'; use http(s)://host:port, "
            "sqlite:///path.db, databricks, postgresql://..., or a local directory",
        )
    if scheme in ("http", "https"):
        return check_server_url(text, name)
    if _URL_USERINFO.match(text):
        raise _fail(
            name,
            value,
            "credentials in the URI would be stored with the run's parameters and "
            "printed in logs; give the database password through PGPASSWORD or a .pgpass file "
            "(for an MLflow server: MLFLOW_TRACKING_USERNAME/PASSWORD from the mlflow-credentials "
            "Secret)",
        )
    return text


def check_percent(value: Any, name: str, low: int = 0, high: int = 100) -> int:
    """An integer percentage in ``[low, high]`` (booleans and fractions refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("+").isdigit():
            value = int(value)
        else:
            raise _fail(name, value, f"give a whole number of percent in {low}..{high}")
    if not low <= value <= high:
        raise _fail(name, value, f"it must be in {low}..{high} percent")
    return value


def check_canary_percent(value: Any, name: str = "canary_traffic_percent") -> int:
    """The traffic share of a new version during its checks: 1..100 (100: no split)."""
    return check_percent(value, name, *CANARY_PERCENT_RANGE)


def is_dns_label(text: str, *, start_with_letter: bool = False, max_length: int = MAX_DNS_LABEL) -> bool:
    """Whether ``text`` is an RFC 1123 label (RFC 1035 with ``start_with_letter``) of at most
    ``max_length`` characters: the one DNS-name rule every Kubernetes name check uses."""
    pattern = _DNS_1035_LABEL if start_with_letter else _DNS_1123_LABEL
    return isinstance(text, str) and len(text) <= max_length and bool(pattern.match(text))


def is_bucket_name(text: str) -> bool:
    """Whether ``text`` is an object-store bucket name (3-222 lower-case letters, digits, '.', '-', '_')."""
    return bool(_BUCKET.match(text))


def check_dns_label(
    value: Any, name: str, *, start_with_letter: bool = False, max_length: int = MAX_DNS_LABEL
) -> str:
    """A Kubernetes RFC 1123 label (namespaces, most names); RFC 1035 with ``start_with_letter``
    (Service and InferenceService names, which become DNS host names)."""
    text = require_text(value, name)
    if not is_dns_label(text, start_with_letter=start_with_letter, max_length=max_length):
        first = "a letter" if start_with_letter else "a letter or digit"
        raise _fail(
            name,
            value,
            f"use at most {max_length} lower-case letters, digits and '-', starting "
            f"with {first} and ending with a letter or digit (e.g. 'credit-default')",
        )
    return text


def check_dns_subdomain(value: Any, name: str) -> str:
    """A Kubernetes RFC 1123 subdomain (Secret and ServiceAccount names): labels joined by '.'."""
    text = require_text(value, name)
    if len(text) > MAX_DNS_SUBDOMAIN or not _DNS_1123_SUBDOMAIN.match(text):
        raise _fail(
            name,
            value,
            f"use at most {MAX_DNS_SUBDOMAIN} lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit (e.g. 'mlflow-credentials')",
        )
    return text


def check_model_name(value: Any, name: str = "model_name") -> str:
    """A registered model name: the one rule the CLI, the registry client, evaluation, deployment
    and the predictor apply.

    It becomes part of ``models:/NAME@alias`` URIs, MLflow REST paths and (lower-cased, ``.``/``_``
    as ``-``) the InferenceService name, so it is kept plain: letters, digits, ``.``, ``_``, ``-``,
    starting with a letter or digit, at most 255 characters.
    """
    text = require_text(value, name, max_length=MAX_MODEL_NAME)
    return _matching(
        text,
        name,
        _MODEL_NAME,
        max_length=MAX_MODEL_NAME,
        rule="use letters, digits, '.', '_' or '-', starting with a letter or digit "
        "(e.g. 'credit-default'); no spaces, '/' or ':'",
    )


def check_image_registry(value: Any, name: str = "--image-registry") -> str:
    """A container registry and path, e.g. ``ghcr.io/org`` or ``registry.local:5000/team``."""
    text = require_text(value, name, max_length=255).rstrip("/")
    if "://" in text or not _REGISTRY.match(text):
        raise _fail(
            name,
            value,
            "write host[:port][/path] in lower case without a scheme "
            "(e.g. ghcr.io/your-org or europe-docker.pkg.dev/project/repo)",
        )
    return text


def check_image_tag(value: Any, name: str = "--image-tag") -> str:
    """A container image tag: at most 128 of letters, digits, '_', '.', '-', not starting with '.'/'-'."""
    return _matching(
        value,
        name,
        _IMAGE_TAG,
        max_length=128,
        rule="a tag is at most 128 letters, digits, '_', '.' and '-', not starting "
        "with '.' or '-' (e.g. 0.1.0 or sha-0123abc)",
    )


def check_quantity(value: Any, name: str) -> str:
    """A Kubernetes resource quantity, e.g. ``500m``, ``1``, ``2Gi``."""
    return _matching(
        value,
        name,
        _QUANTITY,
        max_length=64,
        rule="write a Kubernetes quantity such as 500m or 2 (CPU), 512Mi or 2Gi (memory)",
    )


def check_port(value: Any, name: str) -> int:
    """A TCP port: 1..65535 (0 picks a free one where the caller allows it)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise _fail(name, value, "a port is a whole number in 1..65535")
    return value


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` exactly."""
    if value not in choices:
        raise _fail(name, value, f"use one of {', '.join(choices)}")
    return value


def check_non_negative(value: Any, name: str) -> int | float:
    """A number >= 0 (or its text, as ``--param`` gives it)."""
    number = value
    if isinstance(value, str):
        with suppress(ValueError):
            number = float(value)
    if isinstance(number, bool) or not isinstance(number, int | float) or not number >= 0:
        raise _fail(name, value, "give a number of 0 or more")
    return value


def check_fraction(value: Any, name: str) -> float:
    """A number in ``[0, 1]`` (or its text, as ``--param`` gives it)."""
    number = value
    if isinstance(value, str):
        with suppress(ValueError):
            number = float(value)
    if isinstance(number, bool) or not isinstance(number, int | float) or not 0 <= number <= 1:
        raise _fail(name, value, "give a fraction from 0 to 1, e.g. 0.01 for 1 %")
    return float(number)


#: What ``accept_data_changes`` may name: drift against the reference, numeric values beyond the
#: reference's ranges, or schema changes (ranges, new categories, new columns).
ACCEPTABLE_CHANGES = ("drift", "ranges", "schema")


def check_accepted_changes(value: Any, name: str = "accept_data_changes") -> tuple[str, ...]:
    """A comma-separated subset of :data:`ACCEPTABLE_CHANGES` (``""``: none), as a sorted tuple."""
    if not isinstance(value, str):
        raise _fail(name, value, 'give "" or a comma-separated list of drift, ranges, schema')
    names = {part.strip().lower() for part in value.split(",") if part.strip()}
    unknown = sorted(names - set(ACCEPTABLE_CHANGES))
    if unknown:
        raise _fail(name, value, f"{', '.join(unknown)} cannot be accepted; use drift, ranges and/or schema")
    return tuple(sorted(names))


def check_timestamp(value: Any, name: str) -> str:
    """An RFC 3339 time such as ``2026-01-31T03:00:00Z`` (schedule start and end)."""
    text = require_text(value, name, max_length=64)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(name, value, "write an RFC 3339 time such as 2026-01-31T03:00:00Z") from None
    if moment.tzinfo is None:
        raise _fail(name, value, "give the time zone too (e.g. a trailing Z for UTC, or +01:00)")
    return text


def check_gcp_project(value: Any, name: str = "--project") -> str:
    """A Google Cloud project id: 6-30 lower-case letters, digits and '-', starting with a letter."""
    return _matching(
        value,
        name,
        _GCP_PROJECT,
        max_length=64,
        rule="a project id is 6-30 lower-case letters, digits and '-', starting with a "
        "letter (the id, not the display name or number; see `gcloud projects list`)",
    )


def check_gcp_region(value: Any, name: str = "--region") -> str:
    """A Google Cloud region such as ``europe-west4`` or ``us-central1``."""
    return _matching(
        value,
        name,
        _GCP_REGION,
        max_length=64,
        rule="a region looks like europe-west4 or us-central1 (not a zone like us-central1-a)",
    )


def check_service_account_email(value: Any, name: str = "--service-account") -> str:
    """A Google service account e-mail (``name@project.iam.gserviceaccount.com``)."""
    return _matching(
        value,
        name,
        _SA_EMAIL,
        max_length=254,
        rule="give the service account's e-mail, e.g. pipelines@my-project.iam.gserviceaccount.com",
    )


def check_vertex_job_id(value: Any, name: str = "--job-id") -> str:
    """A Vertex AI PipelineJob id: ``[a-z][-a-z0-9]{0,127}``."""
    return _matching(
        value,
        name,
        _VERTEX_JOB_ID,
        max_length=128,
        rule="a job id is at most 128 lower-case letters, digits and '-', starting with a letter",
    )


# --- Google Cloud resource names (deploy_target gke / vertex-endpoint, Secret Manager) -----------

_GCP_PROJECT_REF = r"(?:[a-z][-a-z0-9]{4,28}[a-z0-9]|[0-9]{1,20})"  # project id or number
_GKE_CLUSTER = re.compile(
    rf"^projects/{_GCP_PROJECT_REF}/locations/[a-z]+(?:-[a-z]+)+[0-9]+(?:-[a-z])?"
    r"/clusters/[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$"
)
_VERTEX_ENDPOINT = re.compile(
    rf"^projects/{_GCP_PROJECT_REF}/locations/[a-z]+(?:-[a-z]+)+[0-9]+"
    r"/endpoints/(?:[1-9][0-9]{0,18}|[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)$"
)
_SECRET_VERSION = re.compile(
    rf"^projects/{_GCP_PROJECT_REF}/secrets/[A-Za-z0-9_-]{{1,255}}/versions/(?:latest|[1-9][0-9]*)$"
)
_MACHINE_TYPE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)+$")
_ACCELERATOR = re.compile(r"^[A-Z][A-Z0-9_]+$")
#: The environment variables MLflow (and its S3 artifact store) read credentials from; the same keys
#: as the Kubeflow Secret ``mlflow-credentials``.
MLFLOW_CREDENTIAL_ENV = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


def check_gke_cluster(value: Any, name: str = "gke_cluster") -> str:
    """A GKE cluster's resource name: ``projects/P/locations/L/clusters/C`` (L a region or zone)."""
    return _matching(
        value,
        name,
        _GKE_CLUSTER,
        max_length=200,
        rule="write the cluster as projects/PROJECT/locations/LOCATION/clusters/NAME (LOCATION a "
        "region such as europe-west4 or a zone such as europe-west4-a; see `gcloud container "
        "clusters list --format='value(selfLink)'`)",
    )


def check_vertex_endpoint(value: Any, name: str = "vertex_endpoint") -> str:
    """A Vertex AI Endpoint's resource name: ``projects/P/locations/REGION/endpoints/ID``."""
    return _matching(
        value,
        name,
        _VERTEX_ENDPOINT,
        max_length=200,
        rule="write the endpoint as projects/PROJECT/locations/REGION/endpoints/ID (ID: the numeric "
        "id `gcloud ai endpoints list` shows, or a new id of lower-case letters, digits and '-' "
        "starting with a letter, created on first deploy)",
    )


def check_secret_version(value: Any, name: str) -> str:
    """A Secret Manager secret version: ``projects/P/secrets/S/versions/latest`` (or a number)."""
    return _matching(
        value,
        name,
        _SECRET_VERSION,
        max_length=400,
        rule="write a secret version as projects/PROJECT/secrets/SECRET/versions/latest (or a "
        "version number); give the secret's NAME here, never its value",
    )


def check_mlflow_secrets(value: Any, name: str = "mlflow_secrets") -> dict[str, str]:
    """``""`` or ``ENV=projects/P/secrets/S/versions/V[,ENV=...]``: which secret fills which variable.

    ENV must be one of :data:`MLFLOW_CREDENTIAL_ENV`; returns ``{ENV: secret version}``. Errors never
    repeat the value: a user who pastes a credential here instead of a secret's name must not find
    it in the logs.
    """
    if value == "":
        return {}
    form = (
        "give ENV=projects/PROJECT/secrets/SECRET/versions/latest pairs, comma-separated, ENV one of "
        f"{', '.join(MLFLOW_CREDENTIAL_ENV)}: secret NAMES, never values (value not shown)"
    )
    if not isinstance(value, str) or _CONTROL.search(value) or len(value) > 2000:
        raise DataError(f"{name} is not valid: {form}")
    mapping: dict[str, str] = {}
    for index, part in enumerate(p.strip() for p in value.split(",")):
        env, equals, secret = part.partition("=")
        env, secret = env.strip(), secret.strip()
        if not equals or env not in MLFLOW_CREDENTIAL_ENV:
            named = f" ({env})" if equals and re.fullmatch(r"[A-Z][A-Z0-9_]*", env) else ""
            raise DataError(f"{name} entry {index + 1}{named} is not valid: {form}")
        if env in mapping:
            raise DataError(f"{name} gives {env} twice")
        if not _SECRET_VERSION.match(secret) or len(secret) > 400:
            raise DataError(f"{name} entry {index + 1} ({env}) is not a secret version name: {form}")
        mapping[env] = secret
    return mapping


def check_machine_type(value: Any, name: str) -> str:
    """A Compute Engine machine type such as ``n1-standard-4`` or ``g2-standard-8``."""
    return _matching(
        value,
        name,
        _MACHINE_TYPE,
        max_length=64,
        rule="a machine type looks like n1-standard-4 or g2-standard-8",
    )


def check_accelerator_type(value: Any, name: str) -> str:
    """A Vertex accelerator type name such as ``NVIDIA_L4`` or ``NVIDIA_TESLA_T4``."""
    return _matching(
        value,
        name,
        _ACCELERATOR,
        max_length=64,
        rule="an accelerator type is a Vertex AcceleratorType name such as NVIDIA_L4 or NVIDIA_TESLA_T4",
    )


# --- cron ----------------------------------------------------------------------------------------

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
    )
}
_DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_CRON_FIELDS = {  # name -> (low, high, names)
    "second": (0, 59, {}),
    "minute": (0, 59, {}),
    "hour": (0, 23, {}),
    "day of month": (1, 31, {}),
    "month": (1, 12, _MONTHS),
    "day of week": (0, 6, _DAYS),
}


def check_cron(
    expression: Any,
    name: str = "--cron",
    *,
    seconds: bool = False,
    question_mark: bool = False,
    sunday_seven: bool = False,
) -> str:
    """A cron expression: 5 fields (minute hour day month weekday), 6 with ``seconds`` first.

    Each field is ``*``, a value, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a list of those;
    months and weekdays may be names (JAN, MON). ``question_mark``: ``?`` in the day fields
    (KFP's robfig/cron); ``sunday_seven``: 7 is Sunday too (unix cron, Vertex).
    """
    text = require_text(expression, name, max_length=256)
    fields = text.split()
    names = list(_CRON_FIELDS)[0 if seconds else 1 :]
    if len(fields) != len(names):
        raise _fail(
            name,
            expression,
            f"it has {len(fields)} fields; write {len(names)}: "
            f"{' '.join(n.replace(' ', '-') for n in names)} (e.g. "
            f"'{'0 ' if seconds else ''}0 3 * * *' for 03:00 daily)",
        )
    for field, field_name in zip(fields, names, strict=True):
        low, high, aliases = _CRON_FIELDS[field_name]
        if field_name == "day of week" and sunday_seven:
            high = 7
        problem = _cron_field_problem(
            field, low, high, aliases, question_mark and field_name in ("day of month", "day of week")
        )
        if problem:
            raise _fail(name, expression, f"{field_name} field {field!r}: {problem}")
    return text


def _cron_field_problem(field: str, low: int, high: int, aliases: dict[str, int], question: bool) -> str:
    """Why one cron field is invalid, or ``""``."""
    if field == "?" and question:
        return ""
    for part in field.split(","):
        base, slash, step = part.partition("/")
        if slash and (not step.isdigit() or not 1 <= int(step) <= high):
            return f"step {step!r} must be a number in 1..{high}"
        if base == "*":
            continue
        start, dash, end = base.partition("-")
        values = [_cron_value(start, aliases)] + ([_cron_value(end, aliases)] if dash else [])
        if any(v is None for v in values):
            kind = "a number or name" if aliases else "a number"
            return f"{base!r} is not {kind} (allowed: *, a, a-b, */n, a-b/n, and lists of them)"
        if any(not low <= v <= high for v in values):
            return f"values must be in {low}..{high}"
        if dash and values[0] > values[1]:
            return f"range {base!r} runs backwards"
    return ""


def _cron_value(text: str, aliases: dict[str, int]) -> int | None:
    if text.isdigit():
        return int(text)
    return aliases.get(text.upper())


def parameter_problems(
    values: Mapping[str, Any], rules: Mapping[str, Callable[[Any, str], Any]]
) -> list[str]:
    """What is wrong with each parameter in ``values`` that has a rule in ``rules``, as sentences.

    ``rules`` maps a parameter name to its check (the pipelines declare theirs in
    ``kfp_cicd.pipelines.parameters.RULES``). Values may be typed or the raw ``--param`` strings;
    parameters without a rule (numbers the spec types already, thresholds the components check) pass.
    """
    problems = []
    for key, value in values.items():
        check = rules.get(key)
        if check is None:
            continue
        try:
            check(value, key)
        except DataError as exc:
            problems.append(str(exc))
    minimum, maximum = values.get("min_replicas"), values.get("max_replicas")
    with suppress(TypeError, ValueError):
        if float(maximum) < float(minimum):
            problems.append(f"max_replicas {maximum} is below min_replicas {minimum}")
    problems += _deploy_target_problems(values)
    return problems


def _deploy_target_problems(values: Mapping[str, Any]) -> list[str]:
    """What deploy_target gke / vertex-endpoint need from the other parameters."""
    target = values.get("deploy_target")
    if target == "gke" and not values.get("gke_cluster"):
        return ["deploy_target gke needs gke_cluster (projects/PROJECT/locations/LOCATION/clusters/NAME)"]
    if target == "vertex-endpoint":
        if not values.get("vertex_endpoint"):
            return [
                "deploy_target vertex-endpoint needs vertex_endpoint "
                "(projects/PROJECT/locations/REGION/endpoints/ID)"
            ]
        with suppress(TypeError, ValueError):
            if "min_replicas" in values and int(values["min_replicas"]) < 1:
                return ["a Vertex AI endpoint keeps at least one replica: set min_replicas >= 1"]
    return []


def check_pipeline_arguments(
    values: Mapping[str, Any], rules: Mapping[str, Callable[[Any, str], Any]]
) -> dict[str, Any]:
    """Check every parameter in ``values`` that has a rule; one error listing all problems."""
    problems = parameter_problems(values, rules)
    if problems:
        raise DataError("invalid parameters:\n  " + "\n  ".join(problems))
    return dict(values)
