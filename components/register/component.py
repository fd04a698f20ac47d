"""KFP wrapper of the registration step (logic: ``kfp_cicd.components.register.registry``)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Model
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
) -> NamedTuple("RegisterOutputs", [("version", str), ("model_uri", str), ("storage_uri", str)]):
    """Register the approved model as a new MLflow model version with its lineage; alias it candidate.

    Logs the model directory and the holdout metrics in an MLflow run, creates a new version of the
    registered model, tags it with the data fingerprint, code revision, pipeline run and the gate's
    decision, and points the alias ``candidate`` at it. Existing aliases (``champion``) are not
    touched: deployment moves ``champion`` after the new version has served.

    Args:
        model: The approved MLflow pyfunc model.
        evaluation_metrics: Holdout metrics from evaluate_model (logged in the run).
        decision: The gate's decision JSON (stored as tags).
        tracking_uri: MLflow tracking URI (sqlite:///… for the embedded default, http://… for a server).
        model_name: Registered model name.
        data_fingerprint: sha256 of the training data, from validate_data.
        train_data: Location of the training data (recorded as lineage).
        pipeline_job_name: The pipeline run's name (lineage).
        pipeline_job_id: The pipeline run's id (lineage).

    Returns:
        version: The new model version.
        model_uri: ``models:/<name>/<version>``.
        storage_uri: Where the version's files are stored (what KServe's storageUri needs).
    """
    from kfp_cicd.components.register.registry import run_register_task

    return run_register_task(
        model_dir=model.path, metrics=evaluation_metrics.metadata, decision_path=decision.path,
        tracking_uri=tracking_uri, model_name=model_name, data_fingerprint=data_fingerprint,
        train_data=train_data, pipeline_job_name=pipeline_job_name, pipeline_job_id=pipeline_job_id)


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(register_model, base_image=image, install_kfp_package=False)
