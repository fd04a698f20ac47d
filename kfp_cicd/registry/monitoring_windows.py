"""Production windows checked by monitoring, kept as MLflow runs so the next check finds the last one.

Each monitoring check (check_drift) of a model with a champion is one run in the MLflow experiment
``<model_name>/monitoring`` (:func:`monitoring_experiment`). The run carries:

- tags: ``monitored_model`` (the registered model), ``champion_version`` (the version the window
  was compared with), ``window`` (the window's location), ``window_digest`` (``sha256:`` of the
  window's bytes), ``retrain`` and ``trigger`` (the verdict), and ``mlflow.runName``
  ``window <file name>``;
- metrics: one per compared feature, ``skew.<feature>`` (vs the champion's training statistics)
  and ``window_drift.<feature>`` (vs the previous window), so the MLflow UI plots them over time;
- artifacts: ``window_statistics/window_stats.pb`` (the window's TFDV statistics, a binary
  ``DatasetFeatureStatisticsList``) and ``report/`` (the decision and the drift report).

The previous window of a check (:func:`find_previous_window`) is the newest FINISHED run of that
experiment for the model whose window has different bytes than this one (re-checking the same
window, e.g. a retried task, does not compare it with itself). It is found whatever the champion
was then: window-to-window drift is about the data, not the model. Every call goes through
:func:`~kfp_cicd.registry.client.mlflow_call` (bounded retries); creating the run is idempotent.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Run
from mlflow.exceptions import MlflowException

from kfp_cicd.errors import RegistryError
from kfp_cicd.parameter_validation import check_model_name
from kfp_cicd.registry.client import client_for, mlflow_call
from kfp_cicd.registry.registration import ensure_experiment
from kfp_cicd.registry.tags import clip

MODEL_TAG, CHAMPION_TAG, WINDOW_TAG, DIGEST_TAG = (
    "monitored_model",
    "champion_version",
    "window",
    "window_digest",
)
RETRAIN_TAG, TRIGGER_TAG = "retrain", "trigger"
WINDOW_ID_TAG = "kfp_cicd_window_id"  # makes creating the run idempotent (see retries.py)
STATISTICS_FOLDER, STATISTICS_FILE = "window_statistics", "window_stats.pb"
REPORT_FOLDER = "report"
_METRIC_NAME = re.compile(r"[^\w.\- ]")
_METRIC_BATCH = 1000


def monitoring_experiment(model_name: str) -> str:
    """The experiment holding ``model_name``'s monitoring runs: ``"<model_name>/monitoring"``."""
    return f"{model_name}/monitoring"


@dataclass(frozen=True)
class StoredWindow:
    """A window a monitoring run stored.

    Attributes:
        run_id: the MLflow run of that check.
        window: the window's location, as that check was given it.
        champion_version: the champion the window was compared with then.
        statistics_uri: full artifact URI of its ``window_stats.pb``.
        started: the run's start, ISO 8601 (UTC).
    """

    run_id: str
    window: str
    champion_version: str
    statistics_uri: str
    started: str

    def describe(self) -> str:
        return (
            f"previous window {self.window} (checked {self.started} against champion version "
            f"{self.champion_version}; MLflow run {self.run_id})"
        )


def _iso(milliseconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(milliseconds / 1000))


def _stored(run: Run) -> StoredWindow:
    return StoredWindow(
        run_id=run.info.run_id,
        window=run.data.tags.get(WINDOW_TAG, ""),
        champion_version=run.data.tags.get(CHAMPION_TAG, ""),
        statistics_uri=f"{run.info.artifact_uri.rstrip('/')}/{STATISTICS_FOLDER}/{STATISTICS_FILE}",
        started=_iso(run.info.start_time),
    )


def find_previous_window(tracking_uri: str, model_name: str, window_digest: str) -> StoredWindow | None:
    """The newest window stored for ``model_name`` whose bytes differ from ``window_digest``.

    None when nothing was stored yet (no experiment, or no finished run): the first window.
    """
    check_model_name(model_name)
    client = client_for(tracking_uri)
    name = monitoring_experiment(model_name)
    try:
        experiment = mlflow_call(
            tracking_uri, f"read experiment {name}", lambda: client.get_experiment_by_name(name)
        )
        if experiment is None:
            return None
        runs = mlflow_call(
            tracking_uri,
            f"search the windows of {name}",
            lambda: client.search_runs(
                [experiment.experiment_id],
                f"attributes.status = 'FINISHED' and tags.{MODEL_TAG} = '{model_name}' "
                f"and tags.{DIGEST_TAG} != '{window_digest}'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            ),
        )
    except MlflowException as exc:
        raise RegistryError(
            f"could not look up the previous monitoring window of {model_name} in experiment "
            f"{name} at {tracking_uri}: {exc}"
        ) from exc
    return _stored(runs[0]) if runs else None


def download_window_statistics(tracking_uri: str, window: StoredWindow, destination: Path) -> Path:
    """A local copy of a stored window's ``window_stats.pb``."""
    import mlflow.artifacts

    destination.mkdir(parents=True, exist_ok=True)
    try:
        local = mlflow_call(
            tracking_uri,
            f"download the statistics of {window.window}",
            lambda: mlflow.artifacts.download_artifacts(
                artifact_uri=window.statistics_uri, dst_path=str(destination), tracking_uri=tracking_uri
            ),
        )
    except (MlflowException, OSError) as exc:
        raise RegistryError(
            f"could not download the statistics of the previous window {window.window} from "
            f"{window.statistics_uri} (MLflow run {window.run_id}): {exc}. Delete that run from "
            "the monitoring experiment to compare with the window before it."
        ) from exc
    return Path(local)


def metric_name(prefix: str, feature: str) -> str:
    """``"<prefix>.<feature>"``, the feature's characters other than letters, digits, ``_.-`` and
    space replaced by ``_`` (MLflow refuses some; a ``/`` would nest the metric)."""
    return f"{prefix}.{_METRIC_NAME.sub('_', feature)}"


def store_window(
    tracking_uri: str,
    model_name: str,
    *,
    tags: dict[str, str],
    statistics_file: Path,
    metrics: dict[str, float] | None = None,
    report_dir: Path | None = None,
) -> StoredWindow:
    """Record one checked window as a finished run of the model's monitoring experiment.

    ``tags`` must hold ``window``, ``window_digest`` and ``champion_version``; ``monitored_model``
    is added. The run is marked FINISHED last, so a check that dies half-way leaves a run that
    :func:`find_previous_window` never picks.
    """
    check_model_name(model_name)
    missing = [key for key in (WINDOW_TAG, DIGEST_TAG, CHAMPION_TAG) if not tags.get(key)]
    if missing:
        raise RegistryError(f"a stored window needs the tags {', '.join(missing)}")
    client = client_for(tracking_uri)
    name = monitoring_experiment(model_name)
    window_id = uuid.uuid4().hex
    run_tags = {key: clip(str(value)) for key, value in tags.items()}
    run_tags.update({MODEL_TAG: model_name, WINDOW_ID_TAG: window_id})
    run_name = f"window {tags[WINDOW_TAG].rstrip('/').rsplit('/', 1)[-1]}"
    try:
        experiment_id = mlflow_call(
            tracking_uri,
            f"get or create experiment {name}",
            lambda: ensure_experiment(client, name, tracking_uri),
        )

        def existing() -> Run | None:
            found = client.search_runs(
                [experiment_id], f"tags.{WINDOW_ID_TAG} = '{window_id}'", max_results=1
            )
            return found[0] if found else None

        run = mlflow_call(
            tracking_uri,
            "create the monitoring run",
            lambda: client.create_run(experiment_id, tags=run_tags, run_name=run_name),
            recover=existing,
        )
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, 0) for key, value in (metrics or {}).items()]
        for start in range(0, len(batch), _METRIC_BATCH):
            part = batch[start : start + _METRIC_BATCH]
            mlflow_call(
                tracking_uri,
                "log the window's metrics",
                lambda part=part: client.log_batch(run_id, metrics=part),
            )
        mlflow_call(
            tracking_uri,
            "store the window's statistics",
            lambda: _log_statistics(client, run_id, statistics_file),
        )
        if report_dir is not None:
            mlflow_call(
                tracking_uri,
                "store the monitoring report",
                lambda: client.log_artifacts(run_id, str(report_dir), REPORT_FOLDER),
            )
        mlflow_call(tracking_uri, "finish the monitoring run", lambda: client.set_terminated(run_id))
        finished = mlflow_call(tracking_uri, "read the monitoring run", lambda: client.get_run(run_id))
    except (MlflowException, OSError) as exc:
        raise RegistryError(
            f"could not store the statistics of window {tags[WINDOW_TAG]} in experiment {name} at "
            f"{tracking_uri}: {exc}"
        ) from exc
    return _stored(finished)


def _log_statistics(client: MlflowClient, run_id: str, statistics_file: Path) -> None:
    """Log ``statistics_file`` as ``window_statistics/window_stats.pb`` whatever its local name."""
    with tempfile.TemporaryDirectory(prefix="window-stats-") as scratch:
        target = Path(scratch) / STATISTICS_FILE
        shutil.copyfile(statistics_file, target)
        client.log_artifact(run_id, str(target), STATISTICS_FOLDER)
