"""Holdout metrics against their definitions, and the evaluation task on a real model: every artifact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kfp_cicd.components.evaluate.audit_record import AuditContext
from kfp_cicd.components.evaluate.evaluation import (
    EvaluationSettings,
    MetricSinks,
    OutputPaths,
    run_evaluation_task,
)
from kfp_cicd.components.evaluate.gate import GatePolicy, standard_thresholds
from kfp_cicd.components.evaluate.metrics import (
    classification_report,
    expected_calibration_error,
    recall_at_precision,
)
from kfp_cicd.components.evaluate.operating_point import ErrorCosts
from kfp_cicd.components.evaluate.slices import parse_slice_keys
from kfp_cicd.errors import DataError
from kfp_cicd.model.integrity import verify_model


def test_report_matches_definitions() -> None:
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.6, 0.7, 0.4, 0.2, 0.9])
    report = classification_report(labels, scores, threshold=0.5)
    assert report.metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))
    # predicted positives at 0.5: 0.6 (wrong), 0.7, 0.9 → precision 2/3, recall 2/3
    assert report.metrics["precision"] == pytest.approx(2 / 3)
    assert report.metrics["recall"] == pytest.approx(2 / 3)
    assert report.confusion_matrix == [[2, 1], [1, 2]]
    assert report.metrics["chance_pr_auc"] == pytest.approx(0.5), "chance: PR AUC = the positive rate"
    assert report.metrics["chance_roc_auc"] == 0.5


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


def test_recall_at_fixed_precision() -> None:
    labels = np.array([1, 1, 0, 1, 0, 0, 0, 1])
    scores = np.array([0.95, 0.9, 0.85, 0.8, 0.6, 0.5, 0.4, 0.3])
    # top 2: precision 1, recall 0.5; top 4: precision 0.75, recall 0.75; all: precision 0.5, recall 1
    assert recall_at_precision(labels, scores, 1.0) == pytest.approx(0.5)
    assert recall_at_precision(labels, scores, 0.75) == pytest.approx(0.75)
    assert recall_at_precision(labels, scores, 0.5) == pytest.approx(1.0)
    with pytest.raises(DataError, match="target precision"):
        recall_at_precision(labels, scores, 0.0)


def test_expected_calibration_error() -> None:
    rng = np.random.default_rng(3)
    probabilities = rng.random(200_000)
    calibrated = (rng.random(200_000) < probabilities).astype(int)
    assert expected_calibration_error(calibrated, probabilities) < 0.01
    overconfident = np.where(probabilities > 0.5, 1.0, 0.0)
    assert expected_calibration_error(calibrated, overconfident) == pytest.approx(0.25, abs=0.01)


def _settings(**policy: object) -> EvaluationSettings:
    return EvaluationSettings(
        policy=GatePolicy(**policy),
        costs=ErrorCosts(30.0, 1.0),
        slice_keys=tuple(parse_slice_keys("channel,amount")),
        min_slice_rows=100,
        min_slice_positives=5,
        latency_repeats=2,
    )


def test_evaluation_task_writes_every_artifact(
    trained_model_dir: Path, small_dataset, tmp_path: Path
) -> None:
    logged: dict = {}
    matrices: list = []
    curves: list = []
    outputs = OutputPaths(
        decision=str(tmp_path / "decision"),
        operating_model=str(tmp_path / "operating"),
        report=str(tmp_path / "report.html"),
        model_card=str(tmp_path / "card.md"),
        audit_record=str(tmp_path / "audit"),
    )
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "features.json").write_text(json.dumps({"label": "is_fraud", "features": []}))
    (tmp_path / "schema" / "schema.pbtxt").write_text("feature { name: 'amount' }")
    context = AuditContext(
        model_name="detector",
        eval_data=str(small_dataset.holdout),
        train_data=str(small_dataset.train),
        data_fingerprint="sha256:abc",
        schema_dir=str(tmp_path / "schema"),
        image_refs="runtime=ghcr.io/o/kfp-cicd-runtime:1",
        pipeline_job_name="job-7",
        pipeline_job_id="7",
    )
    result = run_evaluation_task(
        model_dir=str(trained_model_dir),
        eval_data=str(small_dataset.holdout),
        settings=_settings(
            thresholds=standard_thresholds(0.99, -1, -1),
            champion_metrics=("roc_auc",),
            baseline_metrics=("roc_auc", "expected_cost"),
            baseline_margin=0.05,
        ),
        context=context,
        sinks=MetricSinks(
            logged.__setitem__,
            lambda names, matrix: matrices.append((names, matrix)),
            lambda fpr, tpr, thr: curves.append((fpr, tpr, thr)),
        ),
        outputs=outputs,
    )
    assert result.approved is False, "a 0.99 ROC AUC bar must reject this small model"
    decision = json.loads(Path(outputs.decision).read_text())
    assert any(r.startswith("roc_auc") and r.endswith("FAILED") for r in decision["reasons"])
    assert any("no MLflow tracking URI" in n for n in decision["notes"]), "no registry: said so"
    assert 0.5 < logged["roc_auc"] < 0.99
    assert {
        "recall_at_precision",
        "ece",
        "expected_cost",
        "latency_ms_per_1k_rows",
        "model_size_mb",
        "baseline_roc_auc",
        "baseline_expected_cost",
        "chance_roc_auc",
    } <= set(logged)
    assert [c["metric"] for c in decision["checks"] if c["kind"] == "baseline"] == [
        "roc_auc vs baseline",
        "expected_cost vs baseline",
    ]
    names, matrix = matrices[0]
    assert names == ["0", "1"], "class names come from the data: the synthetic label is 0/1"
    assert sum(map(sum, matrix)) == logged["rows"] == 1200
    assert logged["decision_threshold"] == pytest.approx(result.operating_threshold)
    assert result.operating_threshold != pytest.approx(0.5), "costs 30:1 move the threshold"

    # The operating model is the candidate with the chosen threshold, checksummed.
    assert verify_model(outputs.operating_model) == result.model_digest
    config = json.loads((Path(outputs.operating_model) / "artifacts" / "config.json").read_text())
    assert config["decision_threshold"] == pytest.approx(result.operating_threshold)
    assert verify_model(trained_model_dir) != result.model_digest, "the candidate itself is unchanged"

    record = json.loads(Path(outputs.audit_record).read_text())
    assert record["model"]["digest"] == result.model_digest
    assert record["data"]["data_fingerprint"] == "sha256:abc"
    assert record["data"]["schema"]["schema_sha256"].startswith("sha256:")
    assert record["data"]["eval_data_digest"].startswith("sha256:")
    assert record["code"]["images"] == {"runtime": "ghcr.io/o/kfp-cicd-runtime:1"}
    assert record["code"]["code_revision"]
    assert record["approval"]["decision"] == "rejected"
    assert record["approval"]["decided_by"] == "kfp-cicd quality gate (automated)"
    assert record["parameters"]["cost_false_negative"] == 30.0
    assert record["operating_point"]["source"] == "cost-optimal on the holdout (FN x 30, FP x 1)"
    trained = json.loads((Path(trained_model_dir) / "artifacts" / "config.json").read_text())
    assert record["operating_point"]["default_rule"] == trained.get("threshold_rule", "the model's threshold")
    assert record["baseline"]["threshold_rule"] == "cost-optimal on the holdout (FN x 30, FP x 1)"
    assert record["parameters"]["policy"]["baseline_metrics"] == ["roc_auc", "expected_cost"]
    assert {s["key"] for s in record["slices"]["segments"]} == {"channel", "amount"}

    card = Path(outputs.model_card).read_text()
    assert "# Model card: detector" in card and "## Decision: **REJECTED**" in card
    assert "chosen by: cost-optimal on the holdout (FN x 30, FP x 1)" in card
    assert "positive class '1', negative class '0'" in card and "0/1 label: 1 is positive" in card
    assert "sha256:abc" in card and "job-7" in card and "| channel | online |" in card
    page = Path(outputs.report).read_text()
    assert "REJECTED" in page and "data:image/png;base64," in page and "<td>online</td>" in page
