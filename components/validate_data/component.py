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
) -> NamedTuple(
    "ValidationOutputs",
    [("train_rows", int), ("eval_rows", int), ("anomaly_count", int), ("data_fingerprint", str)],
):
    """Validate the training and evaluation data with TensorFlow Data Validation.

    Computes TFDV statistics of both tables, infers a schema from the training data (or uses the
    given one, e.g. the curated schemas/card_fraud.pbtxt), and checks both tables against it in the
    TRAINING environment: missing or new columns, wrong types, categories outside the domain,
    nulls, values out of range and every other TFDV anomaly. With a baseline it also checks drift
    of the training data (L-infinity for categorical, Jensen-Shannon divergence for numeric
    features). All outputs are written first; then, if any anomaly's kind is not tolerated, the
    task fails with a message listing every one, so nothing downstream trains on bad data.

    Args:
        train_data: Training data file (CSV, gzipped CSV or Parquet; local path, gs:// or s3://).
            It must contain the label column.
        eval_data: Evaluation (holdout) data file in the same format.
        label_column: Name of the label column; it is excluded from the feature list. It must hold
            exactly two classes (0/1, true/false, Yes/No or any two values) in the training data,
            and the evaluation data no others; otherwise the task fails before TFDV runs.
        schema_path: A TFDV schema (.pbtxt, text format) to validate against; "" infers the schema
            from the training data.
        statistics: Output. Directory with train_stats.pb and eval_stats.pb (binary
            DatasetFeatureStatisticsList; read with tfdv.load_stats_binary).
        schema: Output. Directory with schema.pbtxt (the schema used) and features.json (label, its
            two classes and which is positive, each feature's kind numeric/categorical and dtype,
            row counts) for training.
        anomalies: Output. anomalies.json: a list of {dataset, feature, kind, short_description,
            description}, empty when the data is clean.
        report: Output. HTML page with the row counts, the anomalies (feature, kind, meaning),
            the drift table and TFDV's train vs eval statistics (Facets) view.
        summary: Output. Markdown summary: row counts, anomaly table, drift verdict.
        drift_report: Output. Markdown table of each feature's drift metric, value, threshold.
        drift_view: Output. The drift table as an HTML page.
        tolerate_anomalies: Comma-separated TFDV anomaly kinds that do not fail the task, e.g.
            "SCHEMA_NEW_COLUMN,COMPARATOR_L_INFTY_HIGH"; "" tolerates none.
        baseline_statistics: Statistics to check drift against: a train_stats.pb (binary
            DatasetFeatureStatisticsList) or a statistics directory holding one, e.g. the previous
            span's statistics output or the champion model's training statistics (local, gs://,
            s3://); "" skips the drift check.
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

    Returns:
        train_rows: Number of rows in the training data.
        eval_rows: Number of rows in the evaluation data.
        anomaly_count: Number of anomalies found (0 whenever the task succeeds).
        data_fingerprint: "sha256:<hex>" of the training file's bytes, for lineage.
    """
    from kfp_cicd.components.validate_data.validation import run_validation_task
    from kfp_cicd.tfdv.options import (
        ValidationOptions,
        parse_beam_options,
        parse_drift_thresholds,
        parse_tolerated_kinds,
    )

    options = ValidationOptions(
        baseline_statistics=baseline_statistics,
        drift_thresholds=parse_drift_thresholds(drift_thresholds),
        drift_default_threshold=drift_default_threshold,
        processing=processing,
        beam_options=parse_beam_options(beam_options),
        beam_threshold_mb=beam_threshold_mb,
        sample_rate=sample_rate,
    )
    # A plain tuple is a valid value for NamedTuple outputs: kfp's executor takes the fields by
    # position when ``type(value) is tuple`` (kfp/dsl/executor.py, write_executor_output).
    return run_validation_task(
        train_data,
        eval_data,
        label_column,
        schema_path,
        statistics_dir=statistics.path,
        schema_dir=schema.path,
        anomalies_file=anomalies.path,
        report_file=report.path,
        summary_file=summary.path,
        drift_report_file=drift_report.path,
        drift_html_file=drift_view.path,
        tolerate_kinds=parse_tolerated_kinds(tolerate_anomalies),
        options=options,
        artifact_metadata={
            "statistics": statistics.metadata,
            "schema": schema.metadata,
            "anomalies": anomalies.metadata,
            "report": report.metadata,
            "summary": summary.metadata,
            "drift_report": drift_report.metadata,
        },
        positive_label=positive_label,
    )


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(validate_data, base_image=image, install_kfp_package=False)
