"""Registering a model directory as a new version: a run with lineage, then a complete READY version.

The order of the writes keeps aliases valid whenever a step dies half-way: a version is complete
and READY before any alias moves to it. Creating the run and the version is made idempotent (a
retry after a lost answer finds what the lost try created), so there is never a duplicate version.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from kfp_cicd.errors import RegistryError
from kfp_cicd.model.integrity import verify_model
from kfp_cicd.parameter_validation import check_model_name
from kfp_cicd.registry.aliases import CANDIDATE, check_alias
from kfp_cicd.registry.client import client_for, mlflow_call
from kfp_cicd.registry.tags import MODEL_DIGEST_TAG, clip

log = logging.getLogger(__name__)
# Run tag that makes creating the run idempotent: a retry first looks for a run carrying it.
REGISTRATION_ID_TAG = "kfp_cicd_registration_id"
READY_TIMEOUT_SECONDS = 300.0  # how long a new version may stay PENDING_REGISTRATION
_METRIC_BATCH = 1000  # MLflow's limit on metrics per log_batch call


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version in the registry and where its files are stored."""

    name: str
    version: str
    run_id: str
    source: str

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def default_artifact_location(tracking_uri: str) -> str | None:
    """For a SQLite store, artifacts live in ``mlartifacts/`` beside the database file.

    MLflow's own default is ``./mlruns`` relative to the current directory, which would scatter
    models wherever a task happened to run.
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    database = Path(tracking_uri[len("sqlite:///") :])
    return (database.resolve().parent / "mlartifacts").as_uri()


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """The experiment's id, creating it (with a sensible artifact location) if needed."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=default_artifact_location(tracking_uri))


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    """Create the registered model unless it exists (idempotent: safe to retry)."""
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        try:
            client.create_registered_model(name, description="Registered by kfp-cicd pipelines.")
        except MlflowException as create_error:  # created meanwhile (or by a try whose answer was lost)
            if create_error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise


def _create_run(
    tracking_uri: str, client: MlflowClient, experiment_id: str, tags: dict[str, str], run_name: str
) -> Run:
    """Create the run; a retry after a lost answer finds the run that try created instead."""
    registration_id = uuid.uuid4().hex
    run_tags = {**tags, REGISTRATION_ID_TAG: registration_id}

    def existing() -> Run | None:
        runs = client.search_runs(
            [experiment_id], f"tags.{REGISTRATION_ID_TAG} = '{registration_id}'", max_results=1
        )
        return runs[0] if runs else None

    return mlflow_call(
        tracking_uri,
        "create the run",
        lambda: client.create_run(experiment_id, tags=run_tags, run_name=run_name),
        recover=existing,
    )


def _create_version(
    tracking_uri: str,
    client: MlflowClient,
    model_name: str,
    source: str,
    run_id: str,
    tags: dict[str, str],
    description: str | None,
) -> ModelVersion:
    """Create the model version; a retry after a lost answer reuses the version that try created
    (the run id identifies it: each registration has its own run), so there is never a duplicate."""

    def existing() -> ModelVersion | None:
        found = [
            v
            for v in client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
            if v.source == source
        ]
        return min(found, key=lambda v: int(v.version)) if found else None

    return mlflow_call(
        tracking_uri,
        f"create a version of {model_name}",
        lambda: client.create_model_version(
            model_name, source, run_id=run_id, tags=tags, description=description, await_creation_for=0
        ),
        recover=existing,
    )


def wait_until_complete(
    tracking_uri: str,
    model_name: str,
    version: str,
    *,
    digest: str,
    run_id: str,
    timeout: float = READY_TIMEOUT_SECONDS,
    poll: float = 1.0,
) -> None:
    """Return once the version is READY, carries its digest tag and its ``MLmodel`` is stored.

    An alias is moved to a version only after this: never to a half-registered one.
    """
    client = client_for(tracking_uri)
    deadline = time.monotonic() + timeout
    while True:
        found = mlflow_call(
            tracking_uri,
            f"read {model_name} version {version}",
            lambda: client.get_model_version(model_name, version),
        )
        if found.status == "FAILED_REGISTRATION":
            raise RegistryError(
                f"{model_name} version {version} failed to register "
                f"({found.status_message}); no alias was moved to it"
            )
        if found.status == "READY":
            break
        if time.monotonic() > deadline:
            raise RegistryError(
                f"{model_name} version {version} is still {found.status} after "
                f"{timeout:.0f} s; no alias was moved to it"
            )
        time.sleep(poll)
    if found.tags.get(MODEL_DIGEST_TAG) != digest:
        raise RegistryError(
            f"{model_name} version {version} lacks its {MODEL_DIGEST_TAG} tag ({digest}); "
            "no alias was moved to it"
        )
    stored = mlflow_call(
        tracking_uri,
        f"list the files of run {run_id}",
        lambda: {f.path for f in client.list_artifacts(run_id, "model")},
    )
    if "model/MLmodel" not in stored:
        raise RegistryError(
            f"{model_name} version {version}: the run's model/ folder holds no MLmodel "
            f"({sorted(stored)}); no alias was moved to it"
        )


def register_model_version(
    model_dir: str | Path,
    *,
    tracking_uri: str,
    model_name: str,
    experiment_name: str = "kfp-cicd",
    tags: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
    alias: str = CANDIDATE,
    step_metrics: Sequence[Metric] = (),
    artifact_dirs: dict[str, str | Path] | None = None,
    description: str | None = None,
    artifact_tags: dict[str, str] | None = None,
) -> RegisteredVersion:
    """Log ``model_dir`` in a run, register it as a new version of ``model_name``, set ``alias``.

    ``step_metrics`` (e.g. per-epoch training curves) go into the run beside ``metrics``;
    ``artifact_dirs`` maps a run artifact folder to a local directory logged there (the model
    card, the audit record); ``description`` becomes the version's description (Markdown in the MLflow UI).
    ``artifact_tags`` maps a tag name to a path inside the run's artifacts: the tag gets that
    artifact's full location (e.g. ``training_statistics_uri`` -> ``statistics/train_stats.pb``).
    The alias moves last, so a failure on the way leaves the existing aliases untouched.
    """
    check_model_name(model_name)
    check_alias(alias)
    model_dir = Path(model_dir)
    if not (model_dir / "MLmodel").is_file():
        raise RegistryError(f"{model_dir} is not an MLflow model directory (no MLmodel file)")
    tags = {k: clip(str(v)) for k, v in (tags or {}).items()}
    digest = tags[MODEL_DIGEST_TAG] = verify_model(model_dir)
    client = client_for(tracking_uri)
    try:
        experiment_id = mlflow_call(
            tracking_uri,
            f"get or create experiment {experiment_name}",
            lambda: ensure_experiment(client, experiment_name, tracking_uri),
        )
        run = _create_run(tracking_uri, client, experiment_id, tags, f"{model_name}-training")
        run_id = run.info.run_id
        for tag, artifact_path in (artifact_tags or {}).items():
            tags[tag] = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path.lstrip('/')}"
        all_metrics = [Metric(k, float(v), 0, 0) for k, v in (metrics or {}).items()] + list(step_metrics)
        # Logging the same params and metrics again is harmless (MLflow keeps one copy), so these retry.
        mlflow_call(
            tracking_uri,
            "log metrics and params",
            lambda: client.log_batch(
                run_id,
                metrics=all_metrics[:_METRIC_BATCH],
                params=[Param(k, str(v)) for k, v in (params or {}).items()],
            ),
        )
        for start in range(_METRIC_BATCH, len(all_metrics), _METRIC_BATCH):
            batch = all_metrics[start : start + _METRIC_BATCH]
            mlflow_call(
                tracking_uri, "log metrics", lambda batch=batch: client.log_batch(run_id, metrics=batch)
            )
        for folder, local_dir in {"model": model_dir, **(artifact_dirs or {})}.items():
            mlflow_call(
                tracking_uri,
                f"store the {folder}/ files",
                lambda folder=folder, local_dir=local_dir: client.log_artifacts(
                    run_id, str(local_dir), folder
                ),
            )
        mlflow_call(tracking_uri, "finish the run", lambda: client.set_terminated(run_id))
        mlflow_call(
            tracking_uri,
            f"get or create registered model {model_name}",
            lambda: ensure_registered_model(client, model_name),
        )
        source = f"{run.info.artifact_uri}/model"
        created = _create_version(
            tracking_uri, client, model_name, source, run_id, tags, clip(description) if description else None
        )
        wait_until_complete(tracking_uri, model_name, str(created.version), digest=digest, run_id=run_id)
        mlflow_call(
            tracking_uri,
            f"point alias {alias} at version {created.version}",
            lambda: client.set_registered_model_alias(model_name, alias, created.version),
        )
    except MlflowException as exc:
        raise RegistryError(f"MLflow at {tracking_uri} refused registering {model_name}: {exc}") from exc
    log.info("registered %s version %s (alias %s)", model_name, created.version, alias)
    return RegisteredVersion(model_name, str(created.version), run_id, source)
