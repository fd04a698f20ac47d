"""Holdout metrics against scikit-learn, curve down-sampling, and the evaluation task on a real model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kfp_cicd.components.evaluate.evaluation import run_evaluation_task
from kfp_cicd.components.evaluate.gate import standard_thresholds
from kfp_cicd.components.evaluate.metrics import classification_report
from kfp_cicd.errors import DataError


def test_report_matches_definitions() -> None:
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.6, 0.7, 0.4, 0.2, 0.9])
    report = classification_report(labels, scores, threshold=0.5)
    assert report.metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))
    # predicted positives at 0.5: 0.6 (wrong), 0.7, 0.9 → precision 2/3, recall 2/3
    assert report.metrics["precision"] == pytest.approx(2 / 3)
    assert report.metrics["recall"] == pytest.approx(2 / 3)
    assert report.confusion_matrix == [[2, 1], [1, 2]]
    assert report.metrics["baseline_pr_auc"] == pytest.approx(0.5)


def test_roc_curve_is_bounded_and_json_safe() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 5000)
    report = classification_report(labels, rng.random(5000), threshold=0.5)
    assert len(report.roc_fpr) <= 200
    assert report.roc_fpr[0] == 0.0 and report.roc_tpr[-1] == 1.0
    assert all(math.isfinite(t) and 0 <= t <= 1 for t in report.roc_thresholds)


def test_single_class_holdout_is_refused() -> None:
    with pytest.raises(DataError, match="single class"):
        classification_report(np.zeros(10), np.linspace(0, 1, 10), threshold=0.5)


def test_evaluation_task_logs_metrics_curves_and_decision(trained_model_dir: Path, small_dataset,
                                                          tmp_path: Path) -> None:
    logged: dict = {}
    matrices: list = []
    curves: list = []
    approved = run_evaluation_task(
        model_dir=str(trained_model_dir), eval_data=str(small_dataset.holdout),
        thresholds=standard_thresholds(0.99, -1, -1),
        log_metric=logged.__setitem__,
        log_confusion_matrix=lambda names, matrix: matrices.append((names, matrix)),
        log_roc_curve=lambda fpr, tpr, thr: curves.append((fpr, tpr, thr)),
        decision_path=str(tmp_path / "decision.json"))
    assert approved is False, "a 0.99 ROC AUC bar must reject this small model"
    decision = json.loads((tmp_path / "decision.json").read_text())
    assert any(r.startswith("roc_auc") and r.endswith("FAILED") for r in decision["reasons"])
    assert 0.5 < logged["roc_auc"] < 0.99
    names, matrix = matrices[0]
    assert names == ["legitimate", "fraud"]
    assert sum(map(sum, matrix)) == logged["rows"] == 1200
    assert decision["approved"] is False
