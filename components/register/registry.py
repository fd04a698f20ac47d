"""The MLflow model registry: register a model version with lineage, move aliases, resolve storage.

Works against any MLflow tracking URI: the embedded default (a local SQLite store with artifacts
beside it) or a real ``mlflow server`` (``http://…``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException

from kfp_cicd.errors import RegistryError
from kfp_cicd.model.integrity import verify_model

log = logging.getLogger(__name__)
CANDIDATE = "candidate"
CHAMPION = "champion"
PREVIOUS = "previous"
MODEL_DIGEST_TAG = "model_digest"  # checksums.json digest; deployments verify against it
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
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, description="Registered by kfp-cicd pipelines.")


def register_model_version(model_dir: str | Path, *, tracking_uri: str, model_name: str,
                           experiment_name: str = "kfp-cicd", tags: dict[str, str] | None = None,
                           params: dict[str, str] | None = None,
                           metrics: dict[str, float] | None = None,
                           alias: str = CANDIDATE) -> RegisteredVersion:
    """Log ``model_dir`` in a run, register it as a new version of ``model_name``, set ``alias``.

    The alias moves last, so a failure on the way leaves the existing aliases untouched.
    """
    check_model_name(model_name)
    check_alias(alias)
    model_dir = Path(model_dir)
    if not (model_dir / "MLmodel").is_file():
        raise RegistryError(f"{model_dir} is not an MLflow model directory (no MLmodel file)")
    tags = {k: str(v) for k, v in (tags or {}).items()}
    tags[MODEL_DIGEST_TAG] = verify_model(model_dir)
    client = client_for(tracking_uri)
    try:
        experiment_id = ensure_experiment(client, experiment_name, tracking_uri)
        run = client.create_run(experiment_id, tags=tags, run_name=f"{model_name}-training")
        run_id = run.info.run_id
        client.log_batch(run_id,
                         metrics=[Metric(k, float(v), 0, 0) for k, v in (metrics or {}).items()],
                         params=[Param(k, str(v)) for k, v in (params or {}).items()])
        client.log_artifacts(run_id, str(model_dir), "model")
        client.set_terminated(run_id)
        ensure_registered_model(client, model_name)
        source = f"{run.info.artifact_uri}/model"
        created = client.create_model_version(model_name, source, run_id=run_id, tags=tags)
        client.set_registered_model_alias(model_name, alias, created.version)
    except MlflowException as exc:
        raise RegistryError(f"MLflow at {tracking_uri} refused registering {model_name}: {exc}") from exc
    log.info("registered %s version %s (alias %s)", model_name, created.version, alias)
    return RegisteredVersion(model_name, str(created.version), run_id, source)


def require_version(tracking_uri: str, model_name: str, version: str) -> None:
    """Raise RegistryError unless ``model_name`` has ``version``."""
    try:
        client_for(tracking_uri).get_model_version(model_name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"{model_name} has no version {version} at {tracking_uri}: {exc}") from exc


def set_alias(tracking_uri: str, model_name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` (which must exist: a dangling alias is never written)."""
    check_alias(alias)
    require_version(tracking_uri, model_name, version)
    client = client_for(tracking_uri)
    try:
        client.set_registered_model_alias(model_name, alias, str(version))
    except MlflowException as exc:
        raise RegistryError(f"could not point alias {alias!r} of {model_name} at version "
                            f"{version}: {exc}") from exc


def promote(tracking_uri: str, model_name: str, version: str) -> str | None:
    """Make ``version`` the champion; the old champion becomes ``previous``. Returns the old champion.

    ``previous`` moves first: if the champion move then fails, both aliases still point at real
    versions (the old champion), never at nothing.
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
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise RegistryError(f"could not read alias {alias!r} of {model_name}: {exc}") from exc


def storage_location(tracking_uri: str, model_name: str, version: str) -> str:
    """Where the version's files really are (``file://``, ``s3://``, ``gs://`` …).

    KServe's storage initializer cannot read ``models:/`` or ``mlflow-artifacts:/`` URIs, so a
    deployment needs this real location.
    """
    client = client_for(tracking_uri)
    try:
        return client.get_model_version_download_uri(model_name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"{model_name} version {version} not found at {tracking_uri}: {exc}") from exc


def download_version(tracking_uri: str, model_name: str, version: str, destination: str | Path) -> Path:
    """Copy the version's model directory to ``destination`` and return the local path."""
    import mlflow.artifacts

    source = storage_location(tracking_uri, model_name, version)
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(destination),
                                                    tracking_uri=tracking_uri)
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"could not download {model_name} version {version} from {source}: "
                            f"{exc}") from exc
    return Path(local)


def run_register_task(*, model_dir: str, metrics: dict, decision_path: str, tracking_uri: str,
                      model_name: str, data_fingerprint: str, train_data: str,
                      pipeline_job_name: str, pipeline_job_id: str) -> tuple[str, str, str]:
    """The KFP task body: register with lineage tags; returns (version, model_uri, storage_uri)."""
    import json

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
    numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    registered = register_model_version(model_dir, tracking_uri=tracking_uri, model_name=model_name,
                                        tags=tags, metrics=numeric, params={"train_data": train_data})
    location = storage_location(tracking_uri, model_name, registered.version)
    return registered.version, registered.model_uri, location
