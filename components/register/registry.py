"""The MLflow model registry: register a model version with lineage, move aliases, resolve storage.

Works against any MLflow tracking URI: the embedded default (a local SQLite store with artifacts
beside it) or a real ``mlflow server`` (``http://…``). Every MLflow call goes through
``retries.call_with_retries``: bounded retries with backoff when the server does not answer or
answers 5xx/429, an immediate clear error otherwise. The order of the writes keeps aliases valid
whenever a step dies half-way: a version is complete and READY before any alias moves to it, and
alias moves that belong together (promote, rollback) converge when the step is run again.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

from kfp_cicd.components.register.retries import call_with_retries
from kfp_cicd.errors import RegistryError
from kfp_cicd.model.integrity import verify_model

log = logging.getLogger(__name__)
CANDIDATE = "candidate"
CHAMPION = "champion"
PREVIOUS = "previous"
MODEL_DIGEST_TAG = "model_digest"  # checksums.json digest; deployments verify against it
# Where the version's training statistics (TFDV train_stats.pb) are stored: the baseline the
# monitoring pipeline compares production data with.
TRAINING_STATISTICS_TAG = "training_statistics_uri"
STATISTICS_FOLDER = "statistics"  # run artifact folder of the validation statistics
TRIGGER_REASON_TAG = "retraining_reason"  # why a retraining run trained this version
# Run tag that makes creating the run idempotent: a retry first looks for a run carrying it.
REGISTRATION_ID_TAG = "kfp_cicd_registration_id"
# Registered-model tag written before a rollback's two alias moves and removed after them, so a
# rollback interrupted between the moves is finished (not refused) when it is run again.
ROLLBACK_PENDING_TAG = "kfp_cicd_rollback_pending"
READY_TIMEOUT_SECONDS = 300.0  # how long a new version may stay PENDING_REGISTRATION
MAX_TAG_LENGTH = 5000  # MLflow's limit on a model version tag value and description
_METRIC_BATCH = 1000  # MLflow's limit on metrics per log_batch call
_ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


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


def clip(text: str, limit: int = MAX_TAG_LENGTH) -> str:
    """``text`` cut to MLflow's length limit, saying so at the end when it was cut."""
    marker = " …[truncated]"
    return text if len(text) <= limit else text[:limit - len(marker)] + marker


def check_model_name(name: str) -> str:
    """Registered model names become URIs and Kubernetes resource names: keep them plain."""
    if not _NAME_PATTERN.match(name or ""):
        raise RegistryError(f"invalid registered model name {name!r}: use letters, digits, '.', '_' "
                            "or '-', starting with a letter or digit")
    return name


def check_alias(alias: str) -> str:
    if not _ALIAS_PATTERN.match(alias or "") or re.match(r"^v\d+$", alias):
        raise RegistryError(f"invalid alias {alias!r}: start with a letter; letters, digits, '_' "
                            "and '-' only; 'v<number>' is reserved for versions")
    return alias


def _mlflow(tracking_uri: str, operation: str, call: Callable[[], Any], *,
            recover: Callable[[], Any] | None = None) -> Any:
    """One registry call with the bounded retries of ``retries.call_with_retries``."""
    return call_with_retries(operation, call, tracking_uri=tracking_uri, recover=recover)


def client_for(tracking_uri: str) -> MlflowClient:
    """A client whose tracking and registry stores are both ``tracking_uri``."""
    if not tracking_uri:
        raise RegistryError("no MLflow tracking URI given (e.g. sqlite:///mlflow.db or http://host:5000)")
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def default_artifact_location(tracking_uri: str) -> str | None:
    """For a SQLite store, artifacts live in ``mlartifacts/`` beside the database file.

    MLflow's own default is ``./mlruns`` relative to the current directory, which would scatter
    models wherever a task happened to run.
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    database = Path(tracking_uri[len("sqlite:///"):])
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


def _create_run(tracking_uri: str, client: MlflowClient, experiment_id: str, tags: dict[str, str],
                run_name: str) -> Run:
    """Create the run; a retry after a lost answer finds the run that try created instead."""
    registration_id = uuid.uuid4().hex
    run_tags = {**tags, REGISTRATION_ID_TAG: registration_id}

    def existing() -> Run | None:
        runs = client.search_runs([experiment_id], f"tags.{REGISTRATION_ID_TAG} = '{registration_id}'",
                                  max_results=1)
        return runs[0] if runs else None

    return _mlflow(tracking_uri, "create the run", lambda: client.create_run(
        experiment_id, tags=run_tags, run_name=run_name), recover=existing)


def _create_version(tracking_uri: str, client: MlflowClient, model_name: str, source: str, run_id: str,
                    tags: dict[str, str], description: str | None) -> ModelVersion:
    """Create the model version; a retry after a lost answer reuses the version that try created
    (the run id identifies it: each registration has its own run), so there is never a duplicate."""
    def existing() -> ModelVersion | None:
        found = [v for v in client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
                 if v.source == source]
        return min(found, key=lambda v: int(v.version)) if found else None

    return _mlflow(tracking_uri, f"create a version of {model_name}", lambda: client.create_model_version(
        model_name, source, run_id=run_id, tags=tags, description=description, await_creation_for=0),
        recover=existing)


def wait_until_complete(tracking_uri: str, model_name: str, version: str, *, digest: str, run_id: str,
                        timeout: float = READY_TIMEOUT_SECONDS, poll: float = 1.0) -> None:
    """Return once the version is READY, carries its digest tag and its ``MLmodel`` is stored.

    An alias is moved to a version only after this: never to a half-registered one.
    """
    client = client_for(tracking_uri)
    deadline = time.monotonic() + timeout
    while True:
        found = _mlflow(tracking_uri, f"read {model_name} version {version}",
                        lambda: client.get_model_version(model_name, version))
        if found.status == "FAILED_REGISTRATION":
            raise RegistryError(f"{model_name} version {version} failed to register "
                                f"({found.status_message}); no alias was moved to it")
        if found.status == "READY":
            break
        if time.monotonic() > deadline:
            raise RegistryError(f"{model_name} version {version} is still {found.status} after "
                                f"{timeout:.0f} s; no alias was moved to it")
        time.sleep(poll)
    if found.tags.get(MODEL_DIGEST_TAG) != digest:
        raise RegistryError(f"{model_name} version {version} lacks its {MODEL_DIGEST_TAG} tag ({digest}); "
                            "no alias was moved to it")
    stored = _mlflow(tracking_uri, f"list the files of run {run_id}",
                     lambda: {f.path for f in client.list_artifacts(run_id, "model")})
    if "model/MLmodel" not in stored:
        raise RegistryError(f"{model_name} version {version}: the run's model/ folder holds no MLmodel "
                            f"({sorted(stored)}); no alias was moved to it")


def register_model_version(model_dir: str | Path, *, tracking_uri: str, model_name: str,
                           experiment_name: str = "kfp-cicd", tags: dict[str, str] | None = None,
                           params: dict[str, str] | None = None,
                           metrics: dict[str, float] | None = None,
                           alias: str = CANDIDATE, step_metrics: Sequence[Metric] = (),
                           artifact_dirs: dict[str, str | Path] | None = None,
                           description: str | None = None,
                           artifact_tags: dict[str, str] | None = None) -> RegisteredVersion:
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
        experiment_id = _mlflow(tracking_uri, f"get or create experiment {experiment_name}",
                                lambda: ensure_experiment(client, experiment_name, tracking_uri))
        run = _create_run(tracking_uri, client, experiment_id, tags, f"{model_name}-training")
        run_id = run.info.run_id
        for tag, artifact_path in (artifact_tags or {}).items():
            tags[tag] = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path.lstrip('/')}"
        all_metrics = [Metric(k, float(v), 0, 0) for k, v in (metrics or {}).items()] + list(step_metrics)
        # Logging the same params and metrics again is harmless (MLflow keeps one copy), so these retry.
        _mlflow(tracking_uri, "log metrics and params", lambda: client.log_batch(
            run_id, metrics=all_metrics[:_METRIC_BATCH],
            params=[Param(k, str(v)) for k, v in (params or {}).items()]))
        for start in range(_METRIC_BATCH, len(all_metrics), _METRIC_BATCH):
            batch = all_metrics[start:start + _METRIC_BATCH]
            _mlflow(tracking_uri, "log metrics", lambda batch=batch: client.log_batch(run_id, metrics=batch))
        for folder, local_dir in {"model": model_dir, **(artifact_dirs or {})}.items():
            _mlflow(tracking_uri, f"store the {folder}/ files",
                    lambda folder=folder, local_dir=local_dir: client.log_artifacts(
                        run_id, str(local_dir), folder))
        _mlflow(tracking_uri, "finish the run", lambda: client.set_terminated(run_id))
        _mlflow(tracking_uri, f"get or create registered model {model_name}",
                lambda: ensure_registered_model(client, model_name))
        source = f"{run.info.artifact_uri}/model"
        created = _create_version(tracking_uri, client, model_name, source, run_id, tags,
                                  clip(description) if description else None)
        wait_until_complete(tracking_uri, model_name, str(created.version), digest=digest, run_id=run_id)
        _mlflow(tracking_uri, f"point alias {alias} at version {created.version}",
                lambda: client.set_registered_model_alias(model_name, alias, created.version))
    except MlflowException as exc:
        raise RegistryError(f"MLflow at {tracking_uri} refused registering {model_name}: {exc}") from exc
    log.info("registered %s version %s (alias %s)", model_name, created.version, alias)
    return RegisteredVersion(model_name, str(created.version), run_id, source)


def require_version(tracking_uri: str, model_name: str, version: str) -> None:
    """Raise RegistryError unless ``model_name`` has ``version``."""
    client = client_for(tracking_uri)
    try:
        _mlflow(tracking_uri, f"read {model_name} version {version}",
                lambda: client.get_model_version(model_name, str(version)))
    except MlflowException as exc:
        raise RegistryError(f"{model_name} has no version {version} at {tracking_uri}: {exc}") from exc


def set_alias(tracking_uri: str, model_name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` (which must exist: a dangling alias is never written)."""
    check_alias(alias)
    require_version(tracking_uri, model_name, version)
    client = client_for(tracking_uri)
    try:
        _mlflow(tracking_uri, f"point alias {alias} of {model_name} at version {version}",
                lambda: client.set_registered_model_alias(model_name, alias, str(version)))
    except MlflowException as exc:
        raise RegistryError(f"could not point alias {alias!r} of {model_name} at version "
                            f"{version}: {exc}") from exc


def promote(tracking_uri: str, model_name: str, version: str) -> str | None:
    """Make ``version`` the champion; the old champion becomes ``previous``. Returns the old champion.

    ``previous`` moves first and ``champion`` last: if the step dies between the two, both aliases
    point at the old champion (a real, READY version) and running ``promote`` again finishes the
    move (it reads the champion afresh and the ``previous`` move is repeated harmlessly).
    """
    require_version(tracking_uri, model_name, version)
    old = version_for_alias(tracking_uri, model_name, CHAMPION)
    if old == str(version):
        return old
    if old is not None:
        set_alias(tracking_uri, model_name, PREVIOUS, old)
    set_alias(tracking_uri, model_name, CHAMPION, version)
    log.info("%s: champion %s -> %s", model_name, old, version)
    return old


def version_for_alias(tracking_uri: str, model_name: str, alias: str) -> str | None:
    """The version behind ``alias``, or None when the alias (or the model) does not exist."""
    client = client_for(tracking_uri)
    try:
        return str(_mlflow(tracking_uri, f"read alias {alias} of {model_name}",
                           lambda: client.get_model_version_by_alias(model_name, alias)).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise RegistryError(f"could not read alias {alias!r} of {model_name}: {exc}") from exc


def _registered_model(tracking_uri: str, model_name: str) -> RegisteredModel:
    """The registered model; a clear RegistryError if there is no such model."""
    check_model_name(model_name)
    client = client_for(tracking_uri)
    try:
        return _mlflow(tracking_uri, f"read registered model {model_name}",
                       lambda: client.get_registered_model(model_name))
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(f"could not read registered model {model_name!r} at {tracking_uri}: "
                                f"{exc}") from exc
        known = sorted(m.name for m in _mlflow(tracking_uri, "list registered models",
                                                lambda: client.search_registered_models(max_results=50)))
        raise RegistryError(f"no registered model named {model_name!r} at {tracking_uri}; registered "
                            f"models there: {known or 'none'}") from exc


def require_registered_model(tracking_uri: str, model_name: str) -> dict[str, str]:
    """The model's aliases (alias -> version); a clear RegistryError if there is no such model."""
    model = _registered_model(tracking_uri, model_name)
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def version_tags(tracking_uri: str, model_name: str, version: str) -> dict[str, str]:
    """The tags of one model version (RegistryError if it does not exist)."""
    client = client_for(tracking_uri)
    try:
        return dict(_mlflow(tracking_uri, f"read {model_name} version {version}",
                            lambda: client.get_model_version(model_name, str(version))).tags)
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
        versions = _mlflow(tracking_uri, f"list versions of {model_name}",
                           lambda: client.search_model_versions(f"name='{model_name}'"))
    except MlflowException as exc:
        raise RegistryError(f"could not list versions of {model_name}: {exc}") from exc
    summaries = [VersionSummary(
        version=str(v.version), aliases=tuple(by_version.get(str(v.version), ())),
        created=datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).isoformat(timespec="seconds"),
        status=str(v.status), tags=dict(v.tags)) for v in versions]
    return sorted(summaries, key=lambda s: int(s.version), reverse=True)


@dataclass(frozen=True)
class Rollback:
    """What a rollback did: ``restored`` is champion again, ``demoted`` is now ``previous``."""

    model_name: str
    restored: str
    demoted: str


def rollback(tracking_uri: str, model_name: str) -> Rollback:
    """Make the ``previous`` version the champion again; the demoted champion becomes ``previous``.

    Everything is checked before anything moves: the model, both aliases and the version behind
    ``previous`` must exist. Running it twice undoes the rollback.

    The two moves are bracketed by the registered-model tag ``kfp_cicd_rollback_pending``
    (``restored->demoted``), written before ``champion`` moves and removed after ``previous``
    moved. A rollback that died between the moves leaves both aliases on the restored version (a
    real version) and the tag; running ``rollback`` again finishes it instead of refusing
    "both aliases point at the same version" and losing the demoted version.
    """
    model = _registered_model(tracking_uri, model_name)
    aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
    champion, previous = aliases.get(CHAMPION), aliases.get(PREVIOUS)
    pending = _pending_rollback(model, champion)
    if pending is not None:
        restored, demoted = pending
        log.warning("%s: finishing an interrupted rollback (champion %s -> %s)", model_name, demoted,
                    restored)
        return _move_for_rollback(tracking_uri, model_name, restored=restored, demoted=demoted)
    if champion is None:
        raise RegistryError(f"{model_name} has no {CHAMPION!r} alias: nothing is serving, nothing to "
                            f"roll back (aliases: {aliases or 'none'})")
    if previous is None:
        raise RegistryError(f"{model_name} has no {PREVIOUS!r} alias: version {champion} is the first "
                            "champion, there is no earlier one to restore")
    if previous == champion:
        raise RegistryError(f"{model_name}: {CHAMPION!r} and {PREVIOUS!r} both point at version "
                            f"{champion}; rolling back would change nothing")
    require_version(tracking_uri, model_name, previous)
    return _move_for_rollback(tracking_uri, model_name, restored=previous, demoted=champion)


def _pending_rollback(model: RegisteredModel, champion: str | None) -> tuple[str, str] | None:
    """(restored, demoted) of an interrupted rollback, or None.

    The tag counts only while ``champion`` is still one of its two versions; otherwise something
    else (a deployment) moved the champion since, and the stale tag is ignored.
    """
    raw = (model.tags or {}).get(ROLLBACK_PENDING_TAG, "")
    restored, _, demoted = raw.partition("->")
    if restored and demoted and champion in (restored, demoted):
        return restored, demoted
    return None


def _move_for_rollback(tracking_uri: str, model_name: str, *, restored: str, demoted: str) -> Rollback:
    """Mark the rollback pending, move ``champion`` then ``previous``, record it, clear the mark."""
    client = client_for(tracking_uri)
    _mlflow(tracking_uri, f"mark a rollback of {model_name} pending", lambda: client.set_registered_model_tag(
        model_name, ROLLBACK_PENDING_TAG, f"{restored}->{demoted}"))
    set_alias(tracking_uri, model_name, CHAMPION, restored)
    set_alias(tracking_uri, model_name, PREVIOUS, demoted)
    _record_rollback(tracking_uri, model_name, restored=restored, demoted=demoted)
    _mlflow(tracking_uri, f"clear the pending rollback mark of {model_name}",
            lambda: client.delete_registered_model_tag(model_name, ROLLBACK_PENDING_TAG))
    log.info("%s: rolled back champion %s -> %s", model_name, demoted, restored)
    return Rollback(model_name, restored=restored, demoted=demoted)


def _record_rollback(tracking_uri: str, model_name: str, *, restored: str, demoted: str) -> None:
    """Tag both versions with the rollback (after the aliases moved: a tag failure only warns)."""
    when = datetime.now(UTC).isoformat(timespec="seconds")
    client = client_for(tracking_uri)
    try:
        for version, key, value in ((demoted, "rolled_back_at", when), (demoted, "rolled_back_to", restored),
                                    (restored, "restored_as_champion_at", when)):
            _mlflow(tracking_uri, f"tag {model_name} version {version} {key}",
                    lambda version=version, key=key, value=value: client.set_model_version_tag(
                        model_name, version, key, value))
    except (MlflowException, RegistryError) as exc:
        log.warning("rollback done, but recording it in version tags failed: %s", exc)


def storage_location(tracking_uri: str, model_name: str, version: str) -> str:
    """Where the version's files really are (``file://``, ``s3://``, ``gs://`` …).

    KServe's storage initializer cannot read ``models:/`` or ``mlflow-artifacts:/`` URIs, so a
    deployment needs this real location.
    """
    client = client_for(tracking_uri)
    try:
        return _mlflow(tracking_uri, f"resolve where {model_name} version {version} is stored",
                       lambda: client.get_model_version_download_uri(model_name, str(version)))
    except MlflowException as exc:
        raise RegistryError(f"{model_name} version {version} not found at {tracking_uri}: {exc}") from exc


def download_version(tracking_uri: str, model_name: str, version: str, destination: str | Path) -> Path:
    """Copy the version's model directory to ``destination`` and return the local path."""
    import mlflow.artifacts

    source = storage_location(tracking_uri, model_name, version)
    try:
        local = _mlflow(tracking_uri, f"download {model_name} version {version}",
                        lambda: mlflow.artifacts.download_artifacts(
                            artifact_uri=source, dst_path=str(destination), tracking_uri=tracking_uri))
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"could not download {model_name} version {version} from {source}: "
                            f"{exc}") from exc
    return Path(local)


def run_register_task(*, model_dir: str, metrics: dict, decision_path: str, tracking_uri: str,
                      model_name: str, data_fingerprint: str, train_data: str,
                      pipeline_job_name: str, pipeline_job_id: str, audit_record_path: str = "",
                      model_card_path: str = "", report_path: str = "", statistics_dir: str = "",
                      trigger_reason: str = "") -> tuple[str, str, str]:
    """The KFP task body: register with lineage and audit tags; returns (version, model_uri, storage_uri).

    With an audit record (from evaluate_model) the model must be the one the gate evaluated (same
    digest); the record, the model card and the report are stored in the run, the card becomes the
    version's description, and the audit's key facts become version tags. A
    ``training_history.json`` in the model directory is logged as per-epoch metrics.
    ``statistics_dir`` (validate_data's statistics output) is stored in the run's ``statistics/``
    folder and the version tagged ``training_statistics_uri`` with its ``train_stats.pb``: the
    baseline the monitoring pipeline compares production data with. ``trigger_reason`` (set by a
    monitoring run that retrains) becomes the tag ``retraining_reason``.
    """
    import json
    import tempfile

    from kfp_cicd.components.register.audit import (
        audit_tags,
        check_audited_model,
        read_audit_record,
        stage_audit_files,
    )
    from kfp_cicd.components.register.history import history_metrics, read_training_history
    from kfp_cicd.provenance import code_revision
    from kfp_cicd.version import __version__

    decision = json.loads(Path(decision_path).read_text())
    if not decision.get("approved"):
        raise RegistryError("refusing to register a model the evaluation gate did not approve")
    tags = {
        "data_fingerprint": data_fingerprint,
        "train_data": train_data,
        "code_revision": code_revision(),
        "kfp_cicd_version": __version__,
        "pipeline_job_name": pipeline_job_name,
        "pipeline_job_id": pipeline_job_id,
        "gate_decision": "approved",
        "gate_reasons": "; ".join(decision.get("reasons", [])),
    }
    if audit_record_path:
        record = read_audit_record(audit_record_path)
        check_audited_model(record, model_dir)
        tags.update(audit_tags(record))
    if trigger_reason:
        tags[TRIGGER_REASON_TAG] = trigger_reason
    artifact_dirs: dict[str, str | Path] = {}
    artifact_tags: dict[str, str] = {}
    if statistics_dir:
        if not (Path(statistics_dir) / "train_stats.pb").is_file():
            raise RegistryError(f"{statistics_dir} holds no train_stats.pb; pass validate_data's "
                                "statistics output")
        artifact_dirs[STATISTICS_FOLDER] = statistics_dir
        artifact_tags[TRAINING_STATISTICS_TAG] = f"{STATISTICS_FOLDER}/train_stats.pb"
    description = Path(model_card_path).read_text() if model_card_path else None
    numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-audit-") as staging:
        audit_dir = stage_audit_files(Path(staging), decision_path=decision_path,
                                      audit_record_path=audit_record_path,
                                      model_card_path=model_card_path, report_path=report_path)
        registered = register_model_version(
            model_dir, tracking_uri=tracking_uri, model_name=model_name, tags=tags, metrics=numeric,
            params={"train_data": train_data},
            step_metrics=history_metrics(read_training_history(model_dir)),
            artifact_dirs={"audit": audit_dir, **artifact_dirs}, description=description,
            artifact_tags=artifact_tags)
    location = storage_location(tracking_uri, model_name, registered.version)
    return registered.version, registered.model_uri, location
