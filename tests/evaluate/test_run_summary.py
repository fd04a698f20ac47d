"""The run summary says which class is positive, which rule chose the threshold, and the baseline."""

from __future__ import annotations

import json
from pathlib import Path

from kfp_cicd.local_run import LocalRunResult, TaskRecord
from kfp_cicd.run_summary import format_summary


def _result(tmp_path: Path, metrics: dict, record: dict) -> LocalRunResult:
    audit = tmp_path / "audit_record.json"
    audit.write_text(json.dumps(record))
    decision = tmp_path / "decision.json"
    decision.write_text(json.dumps({"reasons": ["roc_auc vs baseline = 0.9100 (required >= 0.88): passed"]}))
    evaluate = TaskRecord(
        "evaluate-model",
        {"Output": True},
        {
            "metrics": {"uri": str(tmp_path / "metrics"), "metadata": metrics},
            "decision": {"uri": str(decision), "metadata": {}},
            "audit_record": {"uri": str(audit), "metadata": {}},
        },
    )
    return LocalRunResult(
        run_dir=tmp_path,
        pipeline_root=tmp_path,
        tracking_uri="sqlite:///m.db",
        train_data="train.csv",
        eval_data="holdout.csv",
        tasks={"evaluate-model": evaluate},
    )


def test_summary_names_the_positive_class_the_threshold_rule_and_the_baseline(tmp_path: Path) -> None:
    record = {
        "model": {
            "operating_threshold": 0.31,
            "threshold_rule": "max F1 on the validation split",
            "classes": {
                "column": "outcome",
                "positive": "churned",
                "negative": "stayed",
                "rule": "'churned' is the less frequent class (2.0 % of rows)",
            },
        }
    }
    metrics = {
        "roc_auc": 0.91,
        "decision_threshold": 0.31,
        "baseline_roc_auc": 0.899,
        "baseline_log_loss": 0.0706,
        "baseline_fitted_rows": 12000.0,
    }
    summary = format_summary(_result(tmp_path, metrics, record))
    assert "  threshold 0.31 chosen by: max F1 on the validation split" in summary
    assert (
        "  positive class: 'churned' of outcome (negative 'stayed'; 'churned' is the less frequent "
        "class (2.0 % of rows))"
    ) in summary
    assert "baseline:   baseline_roc_auc=0.899, baseline_log_loss=0.0706\n" in summary
    assert "  - roc_auc vs baseline = 0.9100" in summary


def test_summary_says_when_no_baseline_was_fitted(tmp_path: Path) -> None:
    summary = format_summary(_result(tmp_path, {"roc_auc": 0.91}, {"model": {}}))
    assert "baseline:   not fitted (baseline check off)" in summary
    assert "chosen by" not in summary
