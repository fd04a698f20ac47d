"""KFP wrappers of the monitoring steps (logic: ``monitoring.py``, ``decision.py``, ``lineage.py``).

check_drift runs on the validation image (its drift check runs in the TFDV environment, like
validate_data); monitoring_verdict and record_retraining_trigger run on the runtime image.
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Output
from kfp.dsl.python_component import PythonComponent


def check_drift(
    production_data: str,
    tracking_uri: str,
    model_name: str,
    label_column: str,
    decision: Output[Artifact],
    drift_report: Output[Markdown],
    drift_view: Output[HTML],
    statistics: Output[Artifact],
    statistics_view: Output[HTML],
    schema_path: str = "",
    drift_thresholds: str = "",
    drift_default_threshold: float = 0.15,
    numeric_histogram: str = "auto",
    sample_rate: float = 1.0,
    mlflow_secrets: str = "",
) -> bool:
    """Check a production window for skew (vs training) and drift (vs the previous window); decide.

    Finds the model version behind the MLflow alias "champion" and its baseline: the training
    statistics its version tag training_statistics_uri points at, or, for versions without that
    tag, statistics computed from the table its train_data tag names. Computes the window's TFDV
    statistics (its label column, if the window carries delayed labels, is left out) and runs
    TFDV's two comparators, as TFX's ExampleValidator does, both with L-infinity distance for
    categorical features and Jensen-Shannon divergence for numeric ones and the thresholds
    drift_thresholds / drift_default_threshold:

    - training-serving skew (skew_comparator): the window as serving data against the champion's
      training statistics;
    - drift (drift_comparator): the window against the previous window, in the schema's SERVING
      environment (which also yields the window's schema anomalies, reported, not a trigger).

    The previous window is the one the last check stored: every check of a model with a champion
    is a run of the MLflow experiment "<model_name>/monitoring" with the window's statistics as
    artifact window_statistics/window_stats.pb, tags monitored_model, champion_version, window,
    window_digest (sha256 of the window's bytes), retrain and trigger, metrics skew.<feature> and
    window_drift.<feature>, and the decision and report under report/. The newest FINISHED run
    whose window has other bytes than this one is the previous window, whatever the champion was
    then; with none (the first window) window drift is not measured and the report says so.

    Returns True (retrain) when any feature's skew against the training statistics or drift
    against the previous window is past its threshold (trigger "skew" if skew is past, else
    "window_drift"), or when the model has no champion yet ("no_champion"; nothing is compared
    or stored); False otherwise ("no_drift"). The decision's reason says which features are past
    which threshold, or the closest ones.

    Args:
        production_data: A recent window of production data (CSV or Parquet; local, gs://, s3://).
        tracking_uri: MLflow tracking URI of the registry holding the champion.
        model_name: Registered model name.
        label_column: Label column, left out of the comparison.
        decision: Output. decision.json: {retrain, trigger, reason, model_name, champion_version,
            production_data, drifted_features (past a threshold in either comparison),
            features_compared, baseline, anomaly_count, triggered_by ("skew", "window_drift"),
            skewed_features, window_drifted_features, previous_window ("" for the first window),
            window_statistics (where this window's statistics were stored), comparisons (per
            feature: metric, threshold, skew, skewed, window_drift, window_drifted)}.
        drift_report: Output. Markdown report: verdict, reason, what triggered, per feature the
            skew against the training statistics and the drift against the previous window with
            their threshold, the window's schema anomalies.
        drift_view: Output. The same report as a self-contained HTML page.
        statistics: Output. Directory with production_stats.pb, baseline_stats.pb and (with a
            previous window) previous_stats.pb (binary DatasetFeatureStatisticsList); empty when
            there is no champion.
        statistics_view: Output. Self-contained statistics view (no network, no external
            scripts): training vs previous window vs this window per feature, anomalies first.
        schema_path: TFDV schema (.pbtxt) to check against; "" infers it from the baseline.
        drift_thresholds: JSON object of per-feature thresholds (skew and window drift alike),
            e.g. {"amount": 0.2}; a negative threshold turns a feature's checks off.
        drift_default_threshold: Skew and drift threshold of features not in drift_thresholds.
        numeric_histogram: Buckets of the numeric features' Jensen-Shannon divergence: "auto"
            (quantiles for float features, robust for heavy tails; standard buckets for integer
            ones), "quantiles" or "standard".
        sample_rate: Fraction of the window's rows the statistics are computed on.
        mlflow_secrets: MLflow credentials from Google Secret Manager (Vertex), read first:
            ENV=projects/P/secrets/S/versions/latest pairs, comma-separated; "": none.

    Returns:
        Whether to retrain.
    """
    from kfp_cicd.gcp.secret_manager import load_mlflow_credentials

    load_mlflow_credentials(mlflow_secrets)  # Secret Manager names (Vertex) -> MLflow's env vars
    from kfp_cicd.components.monitor.monitoring import MonitoringOutputs, check_production_drift
    from kfp_cicd.tfdv.options import ValidationOptions, parse_drift_thresholds

    options = ValidationOptions(
        drift_thresholds=parse_drift_thresholds(drift_thresholds),
        drift_default_threshold=drift_default_threshold,
        sample_rate=sample_rate,
    )
    outputs = MonitoringOutputs(
        decision_file=decision.path,
        report_markdown=drift_report.path,
        report_html=drift_view.path,
        statistics_dir=statistics.path,
        statistics_view=statistics_view.path,
        metadata=decision.metadata,
    )
    verdict = check_production_drift(
        production_data=production_data,
        tracking_uri=tracking_uri,
        model_name=model_name,
        label_column=label_column,
        schema_path=schema_path,
        options=options,
        numeric_histogram=numeric_histogram,
        outputs=outputs,
    )
    return verdict.retrain


def monitoring_verdict(decision: Input[Artifact]) -> str:
    """Say what the monitoring run decided and why, as one sentence.

    Args:
        decision: check_drift's decision.json.

    Returns:
        "RETRAIN: <reason>" or "NO RETRAINING: <reason>".
    """
    from kfp_cicd.components.monitor.decision import RetrainingDecision

    verdict = RetrainingDecision.read(decision.path)
    return f"{'RETRAIN' if verdict.retrain else 'NO RETRAINING'}: {verdict.reason}"


def record_retraining_trigger(
    decision: Input[Artifact],
    drift_report: Input[Markdown],
    tracking_uri: str,
    model_name: str,
    pipeline_job_id: str,
    mlflow_secrets: str = "",
) -> str:
    """Record in the new model's lineage why it was trained.

    Runs after the nested training pipeline. Every version of the model that this pipeline run
    registered (version tag pipeline_job_id) is tagged with retraining_trigger (skew,
    window_drift or no_champion), retraining_reason (the monitoring decision's sentence),
    retraining_window (the production data checked), retraining_drifted_features,
    retraining_replaces_champion and retraining_report (where the drift report is stored). When
    the evaluation gate approved nothing, nothing is tagged and the summary says so.

    Args:
        decision: check_drift's decision.json.
        drift_report: check_drift's drift report (its location is recorded).
        tracking_uri: MLflow tracking URI.
        model_name: Registered model name.
        pipeline_job_id: This pipeline run's id (dsl.PIPELINE_JOB_ID_PLACEHOLDER).
        mlflow_secrets: MLflow credentials from Google Secret Manager (Vertex), read first:
            ENV=projects/P/secrets/S/versions/latest pairs, comma-separated; "": none.

    Returns:
        A summary naming the tagged versions, or saying that nothing was registered.
    """
    from kfp_cicd.gcp.secret_manager import load_mlflow_credentials

    load_mlflow_credentials(mlflow_secrets)  # Secret Manager names (Vertex) -> MLflow's env vars
    from kfp_cicd.components.monitor.decision import RetrainingDecision
    from kfp_cicd.components.monitor.lineage import record_trigger

    record = record_trigger(
        tracking_uri,
        model_name,
        pipeline_job_id,
        RetrainingDecision.read(decision.path),
        monitoring_report=drift_report.uri,
    )
    return record.summary()


def build_component(image: str) -> PythonComponent:
    """check_drift on ``image`` (the validation image: it needs the TFDV environment)."""
    return dsl.component(check_drift, base_image=image, install_kfp_package=False)


def build_verdict_component(image: str) -> PythonComponent:
    """monitoring_verdict on ``image``."""
    return dsl.component(monitoring_verdict, base_image=image, install_kfp_package=False)


def build_record_component(image: str) -> PythonComponent:
    """record_retraining_trigger on ``image``."""
    return dsl.component(record_retraining_trigger, base_image=image, install_kfp_package=False)
