"""KFP wrapper of the registration step (logic: ``kfp_cicd.components.register.task``)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Metrics, Model
from kfp.dsl.python_component import PythonComponent


def register_model(
    model: Input[Model],
    evaluation_metrics: Input[Metrics],
    decision: Input[Artifact],
    tracking_uri: str,
    model_name: str,
    data_fingerprint: str,
    train_data: str,
    pipeline_job_name: str = "",
    pipeline_job_id: str = "",
    audit_record: Input[Artifact] = None,
    model_card: Input[Markdown] = None,
    report: Input[HTML] = None,
    statistics: Input[Artifact] = None,
    schema: Input[Artifact] = None,
    trigger_reason: str = "",
    mlflow_secrets: str = "",
) -> NamedTuple("RegisterOutputs", [("version", str), ("model_uri", str), ("storage_uri", str)]):
    """Register the approved model as a new MLflow model version with its lineage; alias it candidate.

    Logs the model directory, the holdout metrics and (if the model has training_history.json) the
    per-epoch training curves in an MLflow run, stores the decision, audit record, model card and
    evaluation report under the run's ``audit/`` folder, creates a new version of the registered
    model whose description is the model card, tags it with the data fingerprint, code revision,
    pipeline run, the gate's decision and the audit's key facts (approved by/at, operating
    threshold, expected cost, champion compared, eval data digest, schema digest, images), and
    points the alias ``candidate`` at it. A model other than the one the gate approved (different
    digest) is refused. Existing aliases (``champion``, ``previous``) are not touched: deployment
    moves ``champion`` after the new version has served. With validate_data's statistics, the
    training statistics are stored in the run (``statistics/``) and the version is tagged
    training_statistics_uri: the baseline the monitoring pipeline compares production data with.
    With validate_data's schema, the version's data contract is stored in ``data_contract/``
    (schema.pbtxt with its observed ranges and category domains, features.json, contract.json with
    the drift/skew settings, the reference the data was checked against and any accepted change),
    tagged schema_uri and data_contract_uri, and the sha256 of the schema and of the training
    statistics become the tags schema_digest and training_statistics_digest: the next training
    run validates its data against the champion's contract, checked against these digests.

    Args:
        model: The approved MLflow pyfunc model (evaluate_model's operating_model).
        evaluation_metrics: Holdout metrics from evaluate_model (logged in the run).
        decision: The gate's decision JSON (stored as tags).
        tracking_uri: MLflow tracking URI (sqlite:///… for the embedded default, http://… for a server).
        model_name: Registered model name.
        data_fingerprint: sha256 of the training data, from validate_data.
        train_data: Location of the training data (recorded as lineage).
        pipeline_job_name: The pipeline run's name (lineage).
        pipeline_job_id: The pipeline run's id (lineage).
        audit_record: evaluate_model's audit record (optional; checked against the model's digest).
        model_card: evaluate_model's Markdown model card (optional; the version's description).
        report: evaluate_model's HTML report (optional; stored with the version).
        statistics: validate_data's statistics (optional; train_stats.pb becomes the version's
            training_statistics_uri).
        schema: validate_data's schema (optional; stored as the version's data contract, see above).
        trigger_reason: Why this version was trained, when a monitoring run retrained (optional;
            the version tag retraining_reason).
        mlflow_secrets: MLflow credentials from Google Secret Manager (Vertex), read first:
            ENV=projects/P/secrets/S/versions/latest pairs, comma-separated; "": none.

    Returns:
        version: The new model version.
        model_uri: ``models:/<name>/<version>``.
        storage_uri: Where the version's files are stored (what KServe's storageUri needs).
    """
    from kfp_cicd.gcp.secret_manager import load_mlflow_credentials

    load_mlflow_credentials(mlflow_secrets)  # Secret Manager names (Vertex) -> MLflow's env vars
    from kfp_cicd.components.register.task import run_register_task

    return run_register_task(
        model_dir=model.path,
        metrics=evaluation_metrics.metadata,
        decision_path=decision.path,
        tracking_uri=tracking_uri,
        model_name=model_name,
        data_fingerprint=data_fingerprint,
        train_data=train_data,
        pipeline_job_name=pipeline_job_name,
        pipeline_job_id=pipeline_job_id,
        audit_record_path=audit_record.path if audit_record is not None else "",
        model_card_path=model_card.path if model_card is not None else "",
        report_path=report.path if report is not None else "",
        statistics_dir=statistics.path if statistics is not None else "",
        schema_dir=schema.path if schema is not None else "",
        trigger_reason=trigger_reason,
    )


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(register_model, base_image=image, install_kfp_package=False)
