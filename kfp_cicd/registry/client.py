"""A registry client for a tracking URI, and the reads every step makes through it.

Every MLflow call goes through :func:`mlflow_call`, that is through
``retries.call_with_retries``: bounded retries with backoff when the server does not answer or
answers 5xx/429, an immediate clear error otherwise. The reads here (a version, the version behind
an alias, a version's tags, where its files are, the files themselves) raise
:class:`~kfp_cicd.errors.RegistryError` with the model, the version and the tracking URI named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException

from kfp_cicd.errors import RegistryError
from kfp_cicd.parameter_validation import check_model_name
from kfp_cicd.registry.retries import call_with_retries


def mlflow_call(
    tracking_uri: str, operation: str, call: Callable[[], Any], *, recover: Callable[[], Any] | None = None
) -> Any:
    """One registry call with the bounded retries of ``retries.call_with_retries``."""
    return call_with_retries(operation, call, tracking_uri=tracking_uri, recover=recover)


def client_for(tracking_uri: str) -> MlflowClient:
    """A client whose tracking and registry stores are both ``tracking_uri``."""
    if not tracking_uri:
        raise RegistryError("no MLflow tracking URI given (e.g. sqlite:///mlflow.db or http://host:5000)")
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def require_version(tracking_uri: str, model_name: str, version: str) -> None:
    """Raise RegistryError unless ``model_name`` has ``version``."""
    client = client_for(tracking_uri)
    try:
        mlflow_call(
            tracking_uri,
            f"read {model_name} version {version}",
            lambda: client.get_model_version(model_name, str(version)),
        )
    except MlflowException as exc:
        raise RegistryError(f"{model_name} has no version {version} at {tracking_uri}: {exc}") from exc


def version_for_alias(tracking_uri: str, model_name: str, alias: str) -> str | None:
    """The version behind ``alias``, or None when the alias (or the model) does not exist."""
    client = client_for(tracking_uri)
    try:
        return str(
            mlflow_call(
                tracking_uri,
                f"read alias {alias} of {model_name}",
                lambda: client.get_model_version_by_alias(model_name, alias),
            ).version
        )
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise RegistryError(f"could not read alias {alias!r} of {model_name}: {exc}") from exc


def registered_model(tracking_uri: str, model_name: str) -> RegisteredModel:
    """The registered model; a clear RegistryError if there is no such model."""
    check_model_name(model_name)
    client = client_for(tracking_uri)
    try:
        return mlflow_call(
            tracking_uri,
            f"read registered model {model_name}",
            lambda: client.get_registered_model(model_name),
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(
                f"could not read registered model {model_name!r} at {tracking_uri}: {exc}"
            ) from exc
        known = sorted(
            m.name
            for m in mlflow_call(
                tracking_uri,
                "list registered models",
                lambda: client.search_registered_models(max_results=50),
            )
        )
        raise RegistryError(
            f"no registered model named {model_name!r} at {tracking_uri}; registered "
            f"models there: {known or 'none'}"
        ) from exc


def require_registered_model(tracking_uri: str, model_name: str) -> dict[str, str]:
    """The model's aliases (alias -> version); a clear RegistryError if there is no such model."""
    model = registered_model(tracking_uri, model_name)
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def version_tags(tracking_uri: str, model_name: str, version: str) -> dict[str, str]:
    """The tags of one model version (RegistryError if it does not exist)."""
    client = client_for(tracking_uri)
    try:
        return dict(
            mlflow_call(
                tracking_uri,
                f"read {model_name} version {version}",
                lambda: client.get_model_version(model_name, str(version)),
            ).tags
        )
    except MlflowException as exc:
        raise RegistryError(f"{model_name} has no version {version} at {tracking_uri}: {exc}") from exc


@dataclass(frozen=True)
class VersionSummary:
    """One version as ``kfp-cicd registry show`` lists it."""

    version: str
    aliases: tuple[str, ...]
    created: str
    status: str
    tags: dict[str, str]


def list_versions(tracking_uri: str, model_name: str) -> list[VersionSummary]:
    """Every version of the model, newest first, with its aliases and tags."""
    aliases = require_registered_model(tracking_uri, model_name)
    by_version: dict[str, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        by_version.setdefault(version, []).append(alias)
    client = client_for(tracking_uri)
    try:
        versions = mlflow_call(
            tracking_uri,
            f"list versions of {model_name}",
            lambda: client.search_model_versions(f"name='{model_name}'"),
        )
    except MlflowException as exc:
        raise RegistryError(f"could not list versions of {model_name}: {exc}") from exc
    summaries = [
        VersionSummary(
            version=str(v.version),
            aliases=tuple(by_version.get(str(v.version), ())),
            created=datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).isoformat(timespec="seconds"),
            status=str(v.status),
            tags=dict(v.tags),
        )
        for v in versions
    ]
    return sorted(summaries, key=lambda s: int(s.version), reverse=True)


def storage_location(tracking_uri: str, model_name: str, version: str) -> str:
    """Where the version's files really are (``file://``, ``s3://``, ``gs://`` …).

    KServe's storage initializer cannot read ``models:/`` or ``mlflow-artifacts:/`` URIs, so a
    deployment needs this real location.
    """
    client = client_for(tracking_uri)
    try:
        return mlflow_call(
            tracking_uri,
            f"resolve where {model_name} version {version} is stored",
            lambda: client.get_model_version_download_uri(model_name, str(version)),
        )
    except MlflowException as exc:
        raise RegistryError(f"{model_name} version {version} not found at {tracking_uri}: {exc}") from exc


def download_version(tracking_uri: str, model_name: str, version: str, destination: str | Path) -> Path:
    """Copy the version's model directory to ``destination`` and return the local path."""
    import mlflow.artifacts

    source = storage_location(tracking_uri, model_name, version)
    try:
        local = mlflow_call(
            tracking_uri,
            f"download {model_name} version {version}",
            lambda: mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=str(destination), tracking_uri=tracking_uri
            ),
        )
    except (MlflowException, OSError) as exc:
        raise RegistryError(
            f"could not download {model_name} version {version} from {source}: {exc}"
        ) from exc
    return Path(local)
