"""KFP wrapper of the evaluation step (logic: ``evaluation.py``; the decision: ``gate.py``)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Input, Markdown, Metrics, Model, Output
from kfp.dsl.python_component import PythonComponent


def evaluate_model(
    eval_data: str,
    model: Input[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    decision: Output[Artifact],
    operating_model: Output[Model],
    report: Output[HTML],
    model_card: Output[Markdown],
    audit_record: Output[Artifact],
    schema: Input[Artifact] = None,
    min_roc_auc: float = 0.8,
    min_pr_auc: float = 0.2,
    max_log_loss: float = -1.0,
    min_recall_at_precision: float = -1.0,
    target_precision: float = 0.5,
    min_f1: float = -1.0,
    max_ece: float = -1.0,
    tracking_uri: str = "",
    model_name: str = "",
    champion_metrics: str = "roc_auc,pr_auc",
    champion_margin: float = 0.01,
    slice_keys: str = "",
    max_recall_gap: float = -1.0,
    max_fpr_gap: float = -1.0,
    min_slice_rows: int = 200,
    min_slice_positives: int = 10,
    cost_false_negative: float = -1.0,
    cost_false_positive: float = -1.0,
    max_latency_ms_per_1k_rows: float = -1.0,
    max_model_size_mb: float = -1.0,
    train_data: str = "",
    data_fingerprint: str = "",
    image_refs: str = "",
    approved_by: str = "",
    pipeline_job_name: str = "",
    pipeline_job_id: str = "",
) -> bool:
    """Evaluate the candidate like a release manager and decide whether it may ship.

    Scores the holdout with the candidate, chooses the operating threshold from the error costs,
    and measures ROC AUC, PR AUC, recall at a fixed precision, precision/recall/F1/false-positive
    rate at that threshold, log loss and expected calibration error. Scores the registry's champion
    (alias "champion") on the same holdout, computes metrics per segment, and times predictions.
    The gate approves only if every configured check holds: absolute thresholds, not worse than the
    champion by more than the margin (first release: no champion, stated in the decision), largest
    recall / false-positive-rate gap between segments, and the inference budget. The pipeline
    registers and deploys only an approved model, and registers operating_model (the candidate with
    the chosen threshold). Every negative limit switches its check off.

    Args:
        eval_data: Holdout data file with the label column (CSV or Parquet).
        model: The candidate MLflow pyfunc model from train_model.
        metrics: Output. Holdout metrics at the operating threshold, expected cost, latency, size.
        classification_metrics: Output. Confusion matrix and ROC curve for the KFP UI.
        decision: Output. JSON: approved, reasons, notes, and every check's kind, value, limit, outcome.
        operating_model: Output. The candidate with the chosen operating threshold in its config
            (what register_model registers).
        report: Output. HTML report: checks, ROC/PR/calibration plots (candidate vs champion), slices.
        model_card: Output. Markdown model card: decision, lineage, metrics, segments, parameters.
        audit_record: Output. JSON audit record: data fingerprint and schema, code revision, images,
            parameters, metrics, slices, champion comparison, decision with reasons, who and when.
        schema: Optional schema directory from validate_data (recorded in the audit record).
        min_roc_auc: Lowest acceptable ROC AUC.
        min_pr_auc: Lowest acceptable PR AUC (average precision).
        max_log_loss: Highest acceptable log loss.
        min_recall_at_precision: Lowest acceptable recall at precision >= target_precision.
        target_precision: The fixed precision of recall_at_precision.
        min_f1: Lowest acceptable F1 at the operating threshold.
        max_ece: Highest acceptable expected calibration error (10 equal-width bins).
        tracking_uri: MLflow tracking URI to read the champion from ("" : no champion comparison).
        model_name: Registered model name whose "champion" alias is the model to beat.
        champion_metrics: Comma-separated metrics compared with the champion ("" : no comparison).
        champion_margin: How much worse than the champion the candidate may be on each compared metric.
        slice_keys: Comma-separated slice keys: "country", "amount" (quartile bands), "amount:q5",
            "amount:50|200|1000" (explicit band edges).
        max_recall_gap: Largest acceptable recall gap between the segments of a key.
        max_fpr_gap: Largest acceptable false-positive-rate gap between the segments of a key.
        min_slice_rows: Segments with fewer rows are not measured.
        min_slice_positives: Segments with fewer positives get no recall.
        cost_false_negative: Cost of a missed positive; with cost_false_positive chooses the threshold.
        cost_false_positive: Cost of a false alarm (either cost <= 0: keep the model's threshold).
        max_latency_ms_per_1k_rows: Inference budget: milliseconds to score 1,000 rows.
        max_model_size_mb: Inference budget: model size in MB.
        train_data: Training data location (lineage).
        data_fingerprint: Training data fingerprint from validate_data (lineage).
        image_refs: Images used, "name=ref,name=ref" (lineage).
        approved_by: Who signs off, if a person does (default: the automated gate).
        pipeline_job_name: The pipeline run's name (lineage).
        pipeline_job_id: The pipeline run's id (lineage).

    Returns:
        Whether every gate check passed (the reasons are in ``decision`` and the task log).
    """
    from kfp_cicd.components.evaluate.task import evaluation_settings, run_component

    settings = evaluation_settings(
        min_roc_auc=min_roc_auc, min_pr_auc=min_pr_auc, max_log_loss=max_log_loss,
        min_recall_at_precision=min_recall_at_precision, target_precision=target_precision,
        min_f1=min_f1, max_ece=max_ece, tracking_uri=tracking_uri, model_name=model_name,
        champion_metrics=champion_metrics, champion_margin=champion_margin, slice_keys=slice_keys,
        max_recall_gap=max_recall_gap, max_fpr_gap=max_fpr_gap, min_slice_rows=min_slice_rows,
        min_slice_positives=min_slice_positives, cost_false_negative=cost_false_negative,
        cost_false_positive=cost_false_positive, max_latency_ms_per_1k_rows=max_latency_ms_per_1k_rows,
        max_model_size_mb=max_model_size_mb)
    return run_component(
        model=model, eval_data=eval_data, settings=settings, schema=schema, metrics=metrics,
        classification_metrics=classification_metrics, decision=decision,
        operating_model=operating_model, report=report, model_card=model_card, audit_record=audit_record,
        lineage={"model_name": model_name, "eval_data": eval_data, "train_data": train_data,
                 "data_fingerprint": data_fingerprint, "image_refs": image_refs,
                 "approved_by": approved_by, "pipeline_job_name": pipeline_job_name,
                 "pipeline_job_id": pipeline_job_id})


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(evaluate_model, base_image=image, install_kfp_package=False)
