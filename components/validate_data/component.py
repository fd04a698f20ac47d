"""KFP wrapper of the data validation step (logic: ``validate_data/validation.py``).

The function body runs in the validation image's kfp environment; the TFDV work itself runs in
the image's separate TFDV environment as a subprocess (see README.md in this folder).
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Output
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
) -> NamedTuple("ValidationOutputs", [("train_rows", int), ("eval_rows", int),
                                      ("anomaly_count", int), ("data_fingerprint", str)]):
    """Validate the training and evaluation data with TensorFlow Data Validation.

    Computes TFDV statistics of both tables, infers a schema from the training data (or uses the
    given one), and checks both tables against it: missing columns, unexpected categories, wrong
    types and the like. All outputs are written first; if there is any anomaly the task then fails
    with a message listing every one, so nothing downstream trains on bad data.

    Args:
        train_data: Training data file (CSV, gzipped CSV or Parquet; local path, gs:// or s3://).
            It must contain the label column.
        eval_data: Evaluation (holdout) data file in the same format.
        label_column: Name of the label column; it is excluded from the feature list.
        schema_path: A TFDV schema (.pbtxt, text format) to validate against; "" infers the schema
            from the training data.
        statistics: Output. Directory with train_stats.pb and eval_stats.pb (binary
            DatasetFeatureStatisticsList; read with tfdv.load_stats_binary).
        schema: Output. Directory with schema.pbtxt (the schema used) and features.json (label,
            each feature's kind numeric/categorical and dtype, row counts) for training.
        anomalies: Output. anomalies.json: a list of {dataset, feature, kind, short_description,
            description}, empty when the data is clean.
        report: Output. HTML page with the row counts, the anomalies and TFDV's train vs eval
            statistics view.

    Returns:
        train_rows: Number of rows in the training data.
        eval_rows: Number of rows in the evaluation data.
        anomaly_count: Number of anomalies found (0 whenever the task succeeds).
        data_fingerprint: "sha256:<hex>" of the training file's bytes, for lineage.
    """
    from kfp_cicd.components.validate_data.validation import run_validation_task

    # A plain tuple is a valid value for NamedTuple outputs: kfp's executor takes the fields by
    # position when ``type(value) is tuple`` (kfp/dsl/executor.py, write_executor_output).
    return run_validation_task(
        train_data, eval_data, label_column, schema_path,
        statistics_dir=statistics.path, schema_dir=schema.path,
        anomalies_file=anomalies.path, report_file=report.path,
        artifact_metadata={"statistics": statistics.metadata, "schema": schema.metadata,
                           "anomalies": anomalies.metadata, "report": report.metadata})


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(validate_data, base_image=image, install_kfp_package=False)
