"""Holdout metrics of a binary classifier (scikit-learn), plus curves for the KFP UI and the report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from kfp_cicd.errors import DataError

ROC_POINTS = 200  # the KFP UI draws the curve from this many points at most
CALIBRATION_BINS = 10
DEFAULT_TARGET_PRECISION = 0.5
# Metrics where lower is better; every other gated metric is higher-is-better.
LOWER_IS_BETTER = frozenset({"log_loss", "ece", "expected_cost", "false_positive_rate"})
# Metrics two models can be compared on (baseline and champion checks); expected_cost needs error costs.
COMPARABLE_METRICS = (
    "roc_auc",
    "pr_auc",
    "recall_at_precision",
    "precision",
    "recall",
    "f1",
    "false_positive_rate",
    "log_loss",
    "ece",
    "accuracy",
    "expected_cost",
)
# What the report and the model card show for each model, in this order.
SHOWN_METRICS = (*COMPARABLE_METRICS, "decision_threshold")


@dataclass(frozen=True)
class ClassificationReport:
    """Scalar metrics, the confusion matrix at the decision threshold, and the ROC curve."""

    metrics: dict[str, float]
    confusion_matrix: list[list[int]]  # rows: actual [negative, positive]; columns: predicted
    roc_fpr: list[float]
    roc_tpr: list[float]
    roc_thresholds: list[float]


def downsample_curve(
    fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, points: int = ROC_POINTS
) -> tuple[list[float], list[float], list[float]]:
    """Keep at most ``points`` evenly spaced points (ends included); clip the +inf threshold."""
    index = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    clipped = np.clip(thresholds[index], 0.0, 1.0)
    return fpr[index].tolist(), tpr[index].tolist(), clipped.tolist()


def recall_at_precision(labels: np.ndarray, scores: np.ndarray, target_precision: float) -> float:
    """The highest recall any threshold reaches while precision stays >= ``target_precision``.

    0.0 when no threshold reaches that precision: the model cannot operate there at all.
    """
    if not 0.0 < target_precision <= 1.0:
        raise DataError(f"target precision must be in (0, 1], got {target_precision}")
    precision, recall, _ = precision_recall_curve(labels, scores)
    reachable = recall[precision >= target_precision]
    return float(reachable.max()) if reachable.size else 0.0


def calibration_bins(
    labels: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[dict[str, float]]:
    """Equal-width probability bins: rows, mean predicted probability, observed positive rate."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1], right=False), 0, bins - 1)
    table = []
    for b in range(bins):
        member = index == b
        if member.any():
            table.append(
                {
                    "lower": float(edges[b]),
                    "upper": float(edges[b + 1]),
                    "rows": float(member.sum()),
                    "mean_predicted": float(scores[member].mean()),
                    "observed_rate": float(labels[member].mean()),
                }
            )
    return table


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """ECE: the row-weighted mean gap between predicted probability and observed rate per bin."""
    total = float(len(labels))
    return float(
        sum(
            b["rows"] / total * abs(b["mean_predicted"] - b["observed_rate"])
            for b in calibration_bins(labels, scores, bins)
        )
    )


def _checked(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape:
        raise DataError(f"{len(labels)} labels but {len(scores)} scores")
    if len(np.unique(labels)) < 2:
        raise DataError("the evaluation data hold a single class; ROC AUC needs both")
    return labels, scores


def classification_report(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    target_precision: float = DEFAULT_TARGET_PRECISION,
) -> ClassificationReport:
    """ROC AUC, PR AUC, recall at a fixed precision, precision/recall/F1/FPR at ``threshold``,
    log loss, expected calibration error, and what chance scores (``chance_roc_auc``, ``chance_pr_auc``)."""
    labels, scores = _checked(labels, scores)
    predicted = (scores >= threshold).astype(int)
    prevalence = float(labels.mean())
    negatives = labels == 0
    metrics = {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "recall_at_precision": recall_at_precision(labels, scores, target_precision),
        "target_precision": float(target_precision),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "false_positive_rate": float(predicted[negatives].mean()),
        "log_loss": float(log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "ece": expected_calibration_error(labels, scores),
        "accuracy": float((predicted == labels).mean()),
        "decision_threshold": float(threshold),
        "rows": float(len(labels)),
        "positive_rate": prevalence,
        # What a model that knows nothing scores: AUC 0.5, PR AUC = prevalence. (``baseline_*`` metrics
        # are the logistic-regression baseline's: see baseline.py.)
        "chance_roc_auc": 0.5,
        "chance_pr_auc": prevalence,
    }
    matrix = confusion_matrix(labels, predicted, labels=[0, 1]).tolist()
    fpr, tpr, thresholds = roc_curve(labels, scores)
    return ClassificationReport(metrics, matrix, *downsample_curve(fpr, tpr, thresholds))
