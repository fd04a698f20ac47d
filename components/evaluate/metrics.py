"""Holdout metrics of a binary classifier (scikit-learn), plus curves for the KFP UI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from kfp_cicd.errors import DataError

ROC_POINTS = 200  # the KFP UI draws the curve from this many points at most


@dataclass(frozen=True)
class ClassificationReport:
    """Scalar metrics, the confusion matrix at the decision threshold, and the ROC curve."""

    metrics: dict[str, float]
    confusion_matrix: list[list[int]]  # rows: actual [negative, positive]; columns: predicted
    roc_fpr: list[float]
    roc_tpr: list[float]
    roc_thresholds: list[float]


def downsample_curve(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray,
                     points: int = ROC_POINTS) -> tuple[list[float], list[float], list[float]]:
    """Keep at most ``points`` evenly spaced points (ends included); clip the +inf threshold."""
    index = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    clipped = np.clip(thresholds[index], 0.0, 1.0)
    return fpr[index].tolist(), tpr[index].tolist(), clipped.tolist()


def classification_report(labels: np.ndarray, scores: np.ndarray,
                          threshold: float) -> ClassificationReport:
    """ROC AUC, PR AUC, precision/recall/F1 at ``threshold``, log loss, and baselines."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape:
        raise DataError(f"{len(labels)} labels but {len(scores)} scores")
    if len(np.unique(labels)) < 2:
        raise DataError("the evaluation data hold a single class; ROC AUC needs both")
    predicted = (scores >= threshold).astype(int)
    prevalence = float(labels.mean())
    metrics = {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "log_loss": float(log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "accuracy": float((predicted == labels).mean()),
        "decision_threshold": float(threshold),
        "rows": float(len(labels)),
        "positive_rate": prevalence,
        # What a model that knows nothing scores: AUC 0.5, PR AUC = prevalence.
        "baseline_roc_auc": 0.5,
        "baseline_pr_auc": prevalence,
    }
    matrix = confusion_matrix(labels, predicted, labels=[0, 1]).tolist()
    fpr, tpr, thresholds = roc_curve(labels, scores)
    return ClassificationReport(metrics, matrix, *downsample_curve(fpr, tpr, thresholds))
