"""KFP wrapper of the data validation step (logic: ``validate_data/validation.py``).

The function body runs in the validation image's kfp environment; the TFDV work itself runs in
the image's separate TFDV environment as a subprocess (see README.md in this folder).
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Markdown, Output
from kfp.dsl.python_component import PythonComponent


def validate_data(
    train_data: str,
    eval_data: str,
    label_column: str,
    schema_path: str,
    statistics: Output[Artifact],
    schema: Output[Artifact],
    anomalies: Output[Artifact],
    report: Output[HTML],
    summary: Output[Markdown],
    drift_report: Output[Markdown],
    drift_view: Output[HTML],
    tolerate_anomalies: str = "",
    baseline_statistics: str = "",
    drift_thresholds: str = "",
    drift_default_threshold: float = 0.15,
    processing: str = "auto",
    beam_options: str = "",
    beam_threshold_mb: float = 1024.0,
    sample_rate: float = 1.0,
    positive_label: str = "",
    tracking_uri: str = "",
    model_name: str = "",
    range_tolerance: float = 1.0,
    max_unknown_category_fraction: float = 0.01,
    accept_data_changes: str = "",
    trigger_reason: str = "",
    pipeline_job_name: str = "",
    mlflow_secrets: str = "",
    reference: str = "-",
) -> NamedTuple(
    "ValidationOutputs",
    [("train_rows", int), ("eval_rows", int), ("anomaly_count", int), ("data_fingerprint", str)],
):
    """Validate the training and evaluation data with TensorFlow Data Validation, against a data contract.

    The reference is, in order: the schema file schema_path (e.g. written by "kfp-cicd schema
    accept" and reviewed); else the stored schema of model_name's champion in the MLflow registry at
    tracking_uri (its data contract, checked against the version's digest tags); else, for the first
    release, a schema inferred from the training data with each numeric feature's observed range and
    each categorical feature's domain, which register_model stores with the new version as the next
    run's reference (the summary and the report say which). Drift of the training data is measured
    against baseline_statistics, else the champion's training statistics: Jensen-Shannon divergence
    for numeric, L-infinity distance for categorical features, each against its threshold.

    Both tables are checked in the schema's TRAINING environment. Anomalies, each naming its
    column: missing or new columns, type changes (e.g. text or thousands separators in a numeric
    column), categories outside the domain beyond max_unknown_category_fraction, values outside a
    feature's observed range widened by range_tolerance, columns that became null, drift past a
    threshold, and every other TFDV anomaly. All outputs are written first; then, if any anomaly's
    kind is neither tolerated nor accepted, the task fails with a message listing every one, so
    nothing downstream trains on bad data. Accepted changes (accept_data_changes, or drift and wider
    ranges in a retraining run started by monitoring) are recorded in the schema output's contract.json, which
    the audit record and the model card show.

    Args:
        train_data: Training data file (CSV, gzipped CSV or Parquet; local path, gs:// or s3://).
            It must contain the label column.
        eval_data: Evaluation (holdout) data file in the same format.
        label_column: Name of the label column; it is excluded from the feature list. It must hold
            exactly two classes (0/1, true/false, Yes/No or any two values) in the training data,
            and the evaluation data no others; otherwise the task fails before TFDV runs.
        schema_path: A TFDV schema (.pbtxt, text format) to validate against; "": the champion's
            stored schema, or for the first release one inferred from the training data.
        statistics: Output. Directory with train_stats.pb and eval_stats.pb (binary
            DatasetFeatureStatisticsList; read with tfdv.load_stats_binary).
        schema: Output. Directory with schema.pbtxt (the schema used: the release's stored
            reference), features.json (label, its two classes and which is positive, each feature's
            kind numeric/categorical and dtype, row counts) for training, and contract.json (the
            reference checked against, the drift and tolerance settings, what was accepted, and who
            accepted the schema file).
        anomalies: Output. anomalies.json: a list of {dataset, feature, kind, short_description,
            description}, empty when the data is clean.
        report: Output. Self-contained HTML page (no network needed): the reference, the anomalies
            highlighted at the top, the drift table, and per feature train vs eval vs reference
            (missing %, unknown-category %, out-of-range %, inline histograms).
        summary: Output. Markdown summary: row counts, anomaly table, drift verdict.
        drift_report: Output. Markdown table of each feature's drift metric, value, threshold.
        drift_view: Output. The drift table as an HTML page.
        tolerate_anomalies: Comma-separated TFDV anomaly kinds that do not fail the task, e.g.
            "SCHEMA_NEW_COLUMN,COMPARATOR_L_INFTY_HIGH"; "" tolerates none.
        baseline_statistics: Statistics to check drift against: a train_stats.pb (binary
            DatasetFeatureStatisticsList) or a statistics directory holding one, e.g. the previous
            span's statistics output (local, gs://, s3://); "": the champion's training statistics
            (no drift check for the first release).
        drift_thresholds: JSON object of per-feature thresholds, e.g. '{"amount": 0.05}'; a
            negative threshold turns a feature's check off.
        drift_default_threshold: Threshold of every feature not in drift_thresholds.
        processing: "auto", "in_memory" or "beam". auto computes statistics in memory (Arrow,
            parallel workers) unless a file is larger than beam_threshold_mb and beam_options
            name a runner; local data never goes to Beam's DirectRunner by default.
        beam_options: Beam pipeline options passed through, e.g. "--runner=DataflowRunner
            --project=p --region=r --temp_location=gs://b/tmp".
        beam_threshold_mb: Size above which auto processing uses Beam (with beam_options).
        sample_rate: Fraction of rows (0 < r <= 1) the statistics are computed on.
        positive_label: The label value that is the positive class; "" takes 1, true or yes when
            the label has them, else the less frequent class (the rule is recorded in features.json).
        tracking_uri: MLflow tracking URI of the registry holding the champion whose data contract
            is the reference; "": no registry (every run is validated like a first release).
        model_name: Registered model name whose champion's contract is the reference.
        range_tolerance: How far beyond a numeric feature's observed range values may go, as a
            fraction of that range (a never-negative feature stays non-negative). Applies to the
            ranges inferred from data, not to ranges written by hand in a schema.
        max_unknown_category_fraction: Largest share of a categorical feature's values that may be
            outside the schema's categories.
        accept_data_changes: Comma-separated changes to accept in this run: "drift", "ranges"
            (numeric values beyond the reference's ranges), "schema" (ranges, new categories, new
            columns); the stored schema is evolved to cover accepted ranges and schema changes. "":
            none. Recorded in contract.json, the audit record and the model card.
        trigger_reason: Set by a monitoring run that retrains: drift and wider ranges are then
            accepted, for this reason (recorded likewise); unknown categories, type changes and
            missing or new columns still fail the task.
        pipeline_job_name: The pipeline run's name, recorded as who accepted a change.
        mlflow_secrets: MLflow credentials from Google Secret Manager (Vertex), read first:
            ENV=projects/P/secrets/S/versions/latest pairs, comma-separated; "": none.
        reference: data_contract_reference's output: the champion's contract this validation must
            use ("" for a first release). The pipeline passes it so that a cached validation is
            reused only while the champion's contract is unchanged; the task fails when the champion
            changed in between. "-" (the default): not checked.

    Returns:
        train_rows: Number of rows in the training data.
        eval_rows: Number of rows in the evaluation data.
        anomaly_count: Number of anomalies found (0 whenever the task succeeds).
        data_fingerprint: "sha256:<hex>" of the training file's bytes, for lineage.
    """
    from kfp_cicd.gcp.secret_manager import load_mlflow_credentials

    load_mlflow_credentials(mlflow_secrets)  # Secret Manager names (Vertex) -> MLflow's env vars
    from kfp_cicd.components.validate_data.task import run_contract_validation

    # A plain tuple is a valid value for NamedTuple outputs: kfp's executor takes the fields by
    # position when ``type(value) is tuple`` (kfp/dsl/executor.py, write_executor_output).
    return run_contract_validation(
        train_data=train_data,
        eval_data=eval_data,
        label_column=label_column,
        schema_path=schema_path,
        statistics_dir=statistics.path,
        schema_dir=schema.path,
        anomalies_file=anomalies.path,
        report_file=report.path,
        summary_file=summary.path,
        drift_report_file=drift_report.path,
        drift_html_file=drift_view.path,
        artifact_metadata={
            "statistics": statistics.metadata,
            "schema": schema.metadata,
            "anomalies": anomalies.metadata,
            "report": report.metadata,
            "summary": summary.metadata,
            "drift_report": drift_report.metadata,
        },
        tolerate_anomalies=tolerate_anomalies,
        baseline_statistics=baseline_statistics,
        drift_thresholds=drift_thresholds,
        drift_default_threshold=drift_default_threshold,
        processing=processing,
        beam_options=beam_options,
        beam_threshold_mb=beam_threshold_mb,
        sample_rate=sample_rate,
        positive_label=positive_label,
        tracking_uri=tracking_uri,
        model_name=model_name,
        range_tolerance=range_tolerance,
        max_unknown_category_fraction=max_unknown_category_fraction,
        accept_data_changes=accept_data_changes,
        trigger_reason=trigger_reason,
        pipeline_job_name=pipeline_job_name,
        reference=None if reference == "-" else reference,
    )


def data_contract_reference(tracking_uri: str, model_name: str, mlflow_secrets: str = "") -> str:
    """Name the data contract validate_data will check against: the champion's, or none yet.

    Reads the registered model's champion (MLflow alias "champion") and the digests of its stored
    schema and training statistics (version tags schema_digest, training_statistics_digest). Never
    cached: the pipeline passes the answer to validate_data, whose cache is then reused only while
    the champion's contract is the same one.

    Args:
        tracking_uri: MLflow tracking URI of the registry.
        model_name: Registered model name.
        mlflow_secrets: MLflow credentials from Google Secret Manager (Vertex), read first:
            ENV=projects/P/secrets/S/versions/latest pairs, comma-separated; "": none.

    Returns:
        "<model> version <v> schema <digest> statistics <digest>", or "" when the model has no
        champion (the run is a first release).
    """
    from kfp_cicd.gcp.secret_manager import load_mlflow_credentials

    load_mlflow_credentials(mlflow_secrets)  # Secret Manager names (Vertex) -> MLflow's env vars
    from kfp_cicd.components.validate_data.contract import champion_of, reference_key

    return reference_key(champion_of(tracking_uri, model_name))


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(validate_data, base_image=image, install_kfp_package=False)


def build_reference_component(image: str) -> PythonComponent:
    """data_contract_reference on ``image``."""
    return dsl.component(data_contract_reference, base_image=image, install_kfp_package=False)
