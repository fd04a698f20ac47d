"""KFP wrapper of the evaluation step (logic: ``metrics.py``, the gate: ``gate.py``)."""

from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Input, Metrics, Model, Output
from kfp.dsl.python_component import PythonComponent


def evaluate_model(
    eval_data: str,
    model: Input[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    decision: Output[Artifact],
    min_roc_auc: float = 0.8,
    min_pr_auc: float = 0.2,
    max_log_loss: float = -1.0,
) -> bool:
    """Evaluate the candidate model on the holdout and decide whether it may ship.

    Scores the holdout with the MLflow pyfunc model, computes ROC AUC, PR AUC, precision, recall
    and F1 at the model's decision threshold, log loss and accuracy, and applies the quality gate:
    the model is approved only if every threshold holds. The pipeline registers and deploys only an
    approved model.

    Args:
        eval_data: Holdout data file with the label column (CSV or Parquet).
        model: The candidate MLflow pyfunc model from train_model.
        metrics: Output. Holdout metrics, with the trivial baselines for comparison.
        classification_metrics: Output. Confusion matrix and ROC curve for the KFP UI.
        decision: Output. JSON with the decision and every check's value, threshold and outcome.
        min_roc_auc: Lowest acceptable ROC AUC (negative: no check).
        min_pr_auc: Lowest acceptable PR AUC (negative: no check).
        max_log_loss: Highest acceptable log loss (negative: no check).

    Returns:
        Whether every gate check passed (the reasons are in ``decision`` and the task log).
    """
    from kfp_cicd.components.evaluate.evaluation import run_evaluation_task
    from kfp_cicd.components.evaluate.gate import standard_thresholds

    approved = run_evaluation_task(
        model_dir=model.path, eval_data=eval_data,
        thresholds=standard_thresholds(min_roc_auc, min_pr_auc, max_log_loss),
        log_metric=metrics.log_metric,
        log_confusion_matrix=classification_metrics.log_confusion_matrix,
        log_roc_curve=classification_metrics.log_roc_curve,
        decision_path=decision.path)
    decision.metadata["approved"] = approved
    return approved


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(evaluate_model, base_image=image, install_kfp_package=False)
