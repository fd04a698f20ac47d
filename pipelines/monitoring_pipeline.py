"""The monitoring pipeline: check production data for drift; when it drifted, retrain and ship.

One scheduled pipeline closes the continuous-training loop::

    check_drift (champion's training statistics vs a window of production data)
        ├─ monitoring_verdict: what was decided, and why
        └─ if retrain → training pipeline (nested: validate → train → evaluate → register → deploy)
                      → record_retraining_trigger (tags the new version with the reason)

The training pipeline is nested as it is (``build_training_pipeline``), configured for the same
target, so retraining is exactly what a manual training run does. Runs locally through kfp.local
(which runs nested pipelines and ``dsl.If``) and compiles for Kubeflow and Vertex.
"""

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from kfp_cicd.components.monitor.component import build_component as build_check_drift
from kfp_cicd.components.monitor.component import build_record_component, build_verdict_component
from kfp_cicd.images import ImageRefs
from kfp_cicd.pipelines.training_pipeline import (
    Target,
    TrainingResources,
    build_training_pipeline,
    run_as_image_user,
    use_mlflow_credentials,
)

PIPELINE_NAME = "kfp-cicd-monitoring"
#: Training pipeline inputs the monitoring run sets itself (the rest are passed through).
TRIGGER_REASON_INPUT = "trigger_reason"


def _accepts_trigger_reason(training: GraphComponent) -> bool:
    """Whether the training pipeline records a trigger reason at registration (newer versions)."""
    return TRIGGER_REASON_INPUT in (training.component_spec.inputs or {})


def build_monitoring_pipeline(images: ImageRefs | None = None, target: Target | str = Target.LOCAL,
                              resources: TrainingResources | None = None) -> GraphComponent:
    """The monitoring pipeline with components on ``images``, configured for ``target``."""
    images = images or ImageRefs()
    target = Target(target)
    check_drift_op = build_check_drift(images.validation)
    verdict_op = build_verdict_component(images.runtime)
    record_op = build_record_component(images.runtime)
    training = build_training_pipeline(images=images, target=target, resources=resources)
    pass_reason = _accepts_trigger_reason(training)

    @dsl.pipeline(name=PIPELINE_NAME,
                  description="Compare recent production data with the champion's training statistics "
                              "(TFDV drift); when it drifted, retrain, evaluate, register and deploy.")
    def monitoring_pipeline(
        production_data: str,
        train_data: str,
        eval_data: str,
        mlflow_tracking_uri: str,
        model_name: str = "fraud-detector",
        label_column: str = "is_fraud",
        schema_path: str = "",
        drift_thresholds: str = "",
        drift_default_threshold: float = 0.15,
        numeric_histogram: str = "auto",
        sample_rate: float = 1.0,
        epochs: int = 8,
        batch_size: int = 512,
        learning_rate: float = 0.002,
        num_processes: int = 2,
        seed: int = 0,
        min_roc_auc: float = 0.8,
        min_pr_auc: float = 0.2,
        champion_metrics: str = "roc_auc,pr_auc",
        champion_margin: float = 0.01,
        deploy_target: str = "kubernetes",
        namespace: str = "kfp-cicd",
        deployment_mode: str = "Serverless",
        approved_by: str = "",
    ):
        """Monitor production data for drift and retrain the model when it drifted.

        Args:
            production_data: A recent window of production data (CSV/Parquet; local, gs://, s3://),
                e.g. yesterday's logged requests; a label column in it is ignored.
            train_data: Labelled training data a retraining run learns from (e.g. the latest span).
            eval_data: Labelled holdout data for the retrained model's evaluation gate.
            mlflow_tracking_uri: MLflow tracking server (http://…) or store (sqlite:///…).
            model_name: Registered model name; its "champion" alias is the model monitored.
            label_column: Name of the 0/1 label column.
            schema_path: TFDV schema (.pbtxt); "" infers it (from the baseline when monitoring,
                from train_data when retraining).
            drift_thresholds: JSON object of per-feature drift thresholds, e.g. {"amount": 0.2}.
            drift_default_threshold: Drift threshold of features not in drift_thresholds
                (L-infinity for categorical, Jensen-Shannon divergence for numeric features).
            numeric_histogram: Buckets of numeric features' divergence: "auto" (quantiles for float,
                standard for integer features), "quantiles" or "standard".
            sample_rate: Fraction of the window's rows the statistics are computed on.
            epochs: Training epochs of a retraining run.
            batch_size: Rows per step on each worker.
            learning_rate: AdamW learning rate.
            num_processes: CPU workers when no GPU is present (one per GPU otherwise).
            seed: Random seed.
            min_roc_auc: Gate: lowest holdout ROC AUC (negative disables).
            min_pr_auc: Gate: lowest holdout PR AUC (negative disables).
            champion_metrics: Metrics on which the retrained model must not be worse than the
                champion (comma-separated; empty disables).
            champion_margin: How much worse than the champion the retrained model may be.
            deploy_target: "kubernetes" (KServe InferenceService) or "local" (predictor on loopback).
            namespace: Kubernetes namespace of the InferenceService.
            deployment_mode: KServe deployment mode: Serverless or RawDeployment.
            approved_by: Who approves releases of retrained models (recorded in the audit record).
        """
        check = check_drift_op(
            production_data=production_data, tracking_uri=mlflow_tracking_uri, model_name=model_name,
            label_column=label_column, schema_path=schema_path, drift_thresholds=drift_thresholds,
            drift_default_threshold=drift_default_threshold, numeric_histogram=numeric_histogram,
            sample_rate=sample_rate).set_display_name("check drift (TFDV)")
        use_mlflow_credentials(check, target)
        verdict = verdict_op(decision=check.outputs["decision"]).set_display_name("monitoring verdict")
        # kfp.local (2.17) resolves a condition on a task's single "Output" only (see training_pipeline).
        with dsl.If(check.outputs["Output"] == True, name="drift-retrain"):  # noqa: E712
            extra = {TRIGGER_REASON_INPUT: verdict.output} if pass_reason else {}
            retrain = training(
                train_data=train_data, eval_data=eval_data, mlflow_tracking_uri=mlflow_tracking_uri,
                label_column=label_column, schema_path=schema_path, model_name=model_name,
                epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                num_processes=num_processes, seed=seed, min_roc_auc=min_roc_auc, min_pr_auc=min_pr_auc,
                champion_metrics=champion_metrics, champion_margin=champion_margin,
                deploy_target=deploy_target, namespace=namespace, deployment_mode=deployment_mode,
                approved_by=approved_by, **extra).set_display_name("retrain (training pipeline)")
            record = record_op(
                decision=check.outputs["decision"], drift_report=check.outputs["drift_report"],
                tracking_uri=mlflow_tracking_uri, model_name=model_name,
                pipeline_job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            ).set_display_name("record retraining trigger").after(retrain)
            use_mlflow_credentials(record, target)
        # Each run reads the registry's current champion and changes the registry: never cache. The
        # nested training pipeline keeps its own per-task settings (validate/train cached, the rest not).
        for task in (check, verdict, record):
            task.set_caching_options(False)
            run_as_image_user(task, target)

    return monitoring_pipeline
