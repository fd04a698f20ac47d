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
    min_roc_auc: float = 0.6,
    min_pr_auc: float = -1.0,
    max_log_loss: float = -1.0,
    min_recall_at_precision: float = -1.0,
    target_precision: float = 0.5,
    min_f1: float = -1.0,
    max_ece: float = 0.1,
    baseline_metrics: str = "roc_auc,log_loss",
    baseline_margin: float = 0.02,
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
    mlflow_secrets: str = "",
) -> bool:
    """Evaluate the candidate like a release manager and decide whether it may ship.

    Scores the holdout with the candidate and keeps the threshold training chose (reporting the rule
    it recorded, e.g. "max F1 on the validation split"), or, given both error costs, picks the
    cost-optimal threshold on the holdout. Measures ROC AUC, PR AUC, recall at a fixed precision,
    precision/recall/F1/false-positive rate at that threshold, log loss and expected calibration
    error. Fits a plain logistic regression on the candidate's training data, through the
    candidate's own fitted preprocessing, and scores it on the same holdout; scores the registry's
    champion (alias "champion") there too; computes metrics per segment; times predictions. The
    gate approves only if every configured check holds: absolute thresholds; not worse than the
    logistic-regression baseline by more than baseline_margin; not worse than the champion by more
    than champion_margin (first release: no champion, stated in the decision); the largest recall /
    false-positive-rate gap between segments; the inference budget. Checks that are off are stated
    in the decision's notes. The class names and which one is positive come from the model (the
    label's values), and every page says which class is positive and why. The pipeline registers
    and deploys only an approved model, and registers operating_model (the candidate with the
    chosen threshold). Every negative limit switches its check off.

    Args:
        eval_data: Holdout data file with the label column (CSV or Parquet).
        model: The candidate MLflow pyfunc model from train_model.
        metrics: Output. Holdout metrics at the operating threshold, expected cost, latency, size, and
            the logistic-regression baseline's as baseline_<metric> (e.g. baseline_roc_auc,
            baseline_log_loss).
        classification_metrics: Output. Confusion matrix (class names from the label's values) and ROC
            curve for the KFP UI.
        decision: Output. JSON: approved, reasons, notes, every check's kind (threshold, baseline,
            champion, slice, budget), metric, value, limit, outcome, and the baseline's and champion's
            holdout metrics.
        operating_model: Output. The candidate with the chosen operating threshold in its config
            (what register_model registers).
        report: Output. HTML report: positive class and rule, checks, operating point and the rule that
            chose it, metrics and ROC/PR/calibration plots (candidate vs baseline vs champion), slices.
        model_card: Output. Markdown model card: decision, lineage, positive class and rule, metrics
            beside the baseline and champion, threshold rule, segments, parameters.
        audit_record: Output. JSON audit record: data fingerprint and schema, code revision, images,
            parameters, classes, threshold rule, metrics, slices, baseline and champion comparison,
            decision with reasons, who and when.
        schema: Optional schema directory from validate_data (recorded in the audit record).
        min_roc_auc: Lowest acceptable ROC AUC.
        min_pr_auc: Lowest acceptable PR AUC (average precision); it depends on the positive rate, so
            it is off by default.
        max_log_loss: Highest acceptable log loss.
        min_recall_at_precision: Lowest acceptable recall at precision >= target_precision.
        target_precision: The fixed precision of recall_at_precision.
        min_f1: Lowest acceptable F1 at the operating threshold.
        max_ece: Highest acceptable expected calibration error (10 equal-width bins).
        baseline_metrics: Comma-separated metrics on which the candidate must not be worse than a
            logistic regression fitted on train_data through the candidate's own preprocessing ("" :
            no baseline check, stated in the decision's notes). Training data above 200,000 rows is
            sampled (stratified, seeded) for the baseline.
        baseline_margin: How much worse than the baseline the candidate may be on each baseline metric
            (higher-is-better: candidate >= baseline - margin; log_loss, ece, expected_cost,
            false_positive_rate: candidate <= baseline + margin).
        tracking_uri: MLflow tracking URI to read the champion from ("" : no champion comparison).
        model_name: Registered model name whose "champion" alias is the model to beat.
        champion_metrics: Comma-separated metrics compared with the champion ("" : no comparison).
        champion_margin: How much worse than the champion the candidate may be on each compared metric.
        slice_keys: Comma-separated slice keys: "country", "amount" (quartile bands), "amount:q5",
            "amount:50|200|1000" (explicit band edges); "auto": every categorical column of the model
            with 2-20 distinct values in eval_data (combinable, e.g. "auto,amount"); "": no slices.
        max_recall_gap: Largest acceptable recall gap between the segments of a key.
        max_fpr_gap: Largest acceptable false-positive-rate gap between the segments of a key.
        min_slice_rows: Segments with fewer rows are not measured.
        min_slice_positives: Segments with fewer positives get no recall.
        cost_false_negative: Cost of a missed positive; with cost_false_positive chooses the threshold
            that minimises the expected cost on the holdout.
        cost_false_positive: Cost of a false alarm (either cost <= 0: keep the model's threshold and
            the rule training chose it by).
        max_latency_ms_per_1k_rows: Inference budget: milliseconds to score 1,000 rows.
        max_model_size_mb: Inference budget: model size in MB.
        train_data: The candidate's training data (CSV or Parquet): the baseline is fitted on it
            (required while baseline_metrics is set) and it is recorded as lineage.
        data_fingerprint: Training data fingerprint from validate_data (lineage).
        image_refs: Images used, "name=ref,name=ref" (lineage).
        approved_by: Who signs off, if a person does (default: the automated gate).
        pipeline_job_name: The pipeline run's name (lineage).
        pipeline_job_id: The pipeline run's id (lineage).
        mlflow_secrets: MLflow credentials from Google Secret Manager (Vertex), read first:
            ENV=projects/P/secrets/S/versions/latest pairs, comma-separated; "": none.

    Returns:
        Whether every gate check passed (the reasons are in ``decision`` and the task log).
    """
    from kfp_cicd.gcp.secret_manager import load_mlflow_credentials

    load_mlflow_credentials(mlflow_secrets)  # Secret Manager names (Vertex) -> MLflow's env vars
    from kfp_cicd.components.evaluate.task import evaluation_settings, run_component

    settings = evaluation_settings(
        min_roc_auc=min_roc_auc,
        min_pr_auc=min_pr_auc,
        max_log_loss=max_log_loss,
        min_recall_at_precision=min_recall_at_precision,
        target_precision=target_precision,
        min_f1=min_f1,
        max_ece=max_ece,
        baseline_metrics=baseline_metrics,
        baseline_margin=baseline_margin,
        tracking_uri=tracking_uri,
        model_name=model_name,
        champion_metrics=champion_metrics,
        champion_margin=champion_margin,
        slice_keys=slice_keys,
        max_recall_gap=max_recall_gap,
        max_fpr_gap=max_fpr_gap,
        min_slice_rows=min_slice_rows,
        min_slice_positives=min_slice_positives,
        cost_false_negative=cost_false_negative,
        cost_false_positive=cost_false_positive,
        max_latency_ms_per_1k_rows=max_latency_ms_per_1k_rows,
        max_model_size_mb=max_model_size_mb,
    )
    return run_component(
        model=model,
        eval_data=eval_data,
        settings=settings,
        schema=schema,
        metrics=metrics,
        classification_metrics=classification_metrics,
        decision=decision,
        operating_model=operating_model,
        report=report,
        model_card=model_card,
        audit_record=audit_record,
        lineage={
            "model_name": model_name,
            "eval_data": eval_data,
            "train_data": train_data,
            "data_fingerprint": data_fingerprint,
            "image_refs": image_refs,
            "approved_by": approved_by,
            "pipeline_job_name": pipeline_job_name,
            "pipeline_job_id": pipeline_job_id,
        },
    )


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(evaluate_model, base_image=image, install_kfp_package=False)
