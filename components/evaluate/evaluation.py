"""Score the candidate on the holdout, compute metrics, apply the gate, write the UI artifacts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np

from kfp_cicd.components.evaluate.gate import GateDecision, Threshold, decide
from kfp_cicd.components.evaluate.metrics import ClassificationReport, classification_report
from kfp_cicd.data.tables import read_table
from kfp_cicd.model.integrity import verify_model
from kfp_cicd.model.preprocessing import label_vector

log = logging.getLogger(__name__)
CLASS_NAMES = ["legitimate", "fraud"]


@dataclass(frozen=True)
class Evaluation:
    report: ClassificationReport
    decision: GateDecision


def score_holdout(model_dir: str | Path, eval_data: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Load the MLflow pyfunc model and score the holdout: (labels, probabilities, threshold)."""
    verify_model(model_dir)
    model = mlflow.pyfunc.load_model(str(model_dir))
    config = model.unwrap_python_model().config
    frame = read_table(eval_data)
    labels = label_vector(frame, config["label"])
    predictions = model.predict(frame.drop(columns=[config["label"]]))
    log.info("scored %d holdout rows", len(labels))
    return labels, predictions["probability"].to_numpy(), float(config["decision_threshold"])


def evaluate_model(model_dir: str | Path, eval_data: str,
                   thresholds: list[Threshold]) -> Evaluation:
    """Holdout metrics of the model and the gate's decision on them."""
    labels, scores, threshold = score_holdout(model_dir, eval_data)
    report = classification_report(labels, scores, threshold)
    return Evaluation(report, decide(report.metrics, thresholds))


def run_evaluation_task(*, model_dir: str, eval_data: str, thresholds: list[Threshold],
                        log_metric: Callable[[str, float], None],
                        log_confusion_matrix: Callable[[list[str], list[list[int]]], None],
                        log_roc_curve: Callable[[list[float], list[float], list[float]], None],
                        decision_path: str) -> bool:
    """The KFP task body; returns whether the gate approved (reasons go to ``decision_path``)."""
    evaluation = evaluate_model(model_dir, eval_data, thresholds)
    for name, value in evaluation.report.metrics.items():
        log_metric(name, value)
    log_confusion_matrix(CLASS_NAMES, evaluation.report.confusion_matrix)
    log_roc_curve(evaluation.report.roc_fpr, evaluation.report.roc_tpr,
                  evaluation.report.roc_thresholds)
    Path(decision_path).parent.mkdir(parents=True, exist_ok=True)
    Path(decision_path).write_text(evaluation.decision.to_json())
    verdict = "APPROVED" if evaluation.decision.approved else "REJECTED"
    log.info("gate %s:\n  %s", verdict, "\n  ".join(evaluation.decision.reasons))
    return evaluation.decision.approved
