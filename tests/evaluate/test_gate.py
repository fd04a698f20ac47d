"""The quality gate: every threshold checked, reasons for each, errors for unmeasured metrics."""

from __future__ import annotations

import json

import pytest

from kfp_cicd.components.evaluate.gate import (
    Baseline,
    GatePolicy,
    Threshold,
    champion_checks,
    decide,
    decide_release,
    standard_thresholds,
)
from kfp_cicd.components.evaluate.slices import Gap

METRICS = {"roc_auc": 0.91, "pr_auc": 0.35, "log_loss": 0.2}


def test_approves_only_when_every_check_passes() -> None:
    decision = decide(METRICS, standard_thresholds(0.9, 0.3, 0.25))
    assert decision.approved
    assert [c.passed for c in decision.checks] == [True, True, True]


@pytest.mark.parametrize(("thresholds", "failing"), [
    ((0.95, 0.3, 0.25), "roc_auc"),
    ((0.9, 0.4, 0.25), "pr_auc"),
    ((0.9, 0.3, 0.1), "log_loss"),
])
def test_rejects_and_names_the_failing_check(thresholds: tuple, failing: str) -> None:
    decision = decide(METRICS, standard_thresholds(*thresholds))
    assert not decision.approved
    failed = [c.metric for c in decision.checks if not c.passed]
    assert failed == [failing]
    assert any(r.startswith(failing) and r.endswith("FAILED") for r in decision.reasons)


def test_negative_threshold_switches_a_check_off() -> None:
    decision = decide(METRICS, standard_thresholds(0.99, -1, -1))
    assert [c.metric for c in decision.checks] == ["roc_auc"]


def test_a_threshold_on_an_unmeasured_metric_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"not measured: \['ece'\]"):
        decide(METRICS, [Threshold("ece", "<=", 0.1)])


def test_unknown_operator_is_refused() -> None:
    with pytest.raises(ValueError, match="operator"):
        Threshold("roc_auc", ">", 0.5)


def test_decision_json_lists_every_check() -> None:
    payload = json.loads(decide(METRICS, standard_thresholds(0.95, 0.3, -1)).to_json())
    assert payload["approved"] is False
    assert {c["metric"] for c in payload["checks"]} == {"roc_auc", "pr_auc"}
    assert payload["checks"][0]["value"] == pytest.approx(0.91)


def test_champion_comparison_respects_direction_and_margin() -> None:
    candidate = {"roc_auc": 0.89, "log_loss": 0.25, "pr_auc": 0.30}
    champion = Baseline("champion m version 3", {"roc_auc": 0.895, "log_loss": 0.24, "pr_auc": 0.40})
    checks = {c.metric: c for c in champion_checks(candidate, champion, ["roc_auc", "log_loss", "pr_auc"],
                                                   margin=0.02)}
    assert checks["roc_auc vs champion"].passed, "0.89 >= 0.895 - 0.02"
    assert checks["roc_auc vs champion"].threshold == pytest.approx(0.875)
    assert checks["log_loss vs champion"].op == "<=" and checks["log_loss vs champion"].passed
    assert not checks["pr_auc vs champion"].passed
    assert "version 3: 0.4000" in checks["pr_auc vs champion"].detail
    with pytest.raises(ValueError, match="not measured"):
        champion_checks(candidate, champion, ["ece"], margin=0.0)


def test_release_decision_says_when_there_is_no_champion() -> None:
    policy = GatePolicy(thresholds=standard_thresholds(0.8, -1, -1), champion_metrics=("roc_auc",))
    decision = decide_release(METRICS, policy, baseline=None, baseline_note="first release: no champion",
                              gaps=[], latency_ms_per_1k_rows=5.0, model_size_mb=1.0)
    assert decision.approved
    assert decision.notes == ("champion comparison not made: first release: no champion",)
    assert decision.reasons[-1].startswith("champion comparison not made")


def test_release_decision_combines_every_kind_of_check() -> None:
    policy = GatePolicy(thresholds=standard_thresholds(0.8, -1, -1), champion_metrics=("roc_auc",),
                        champion_margin=0.0, max_recall_gap=0.2, max_fpr_gap=-1,
                        max_latency_ms_per_1k_rows=10.0, max_model_size_mb=0.5)
    gaps = [Gap("country", "recall", 0.3, "DE", 0.8, "FR", 0.5, 4),
            Gap("country", "false_positive_rate", 0.01, "DE", 0.02, "FR", 0.01, 4),
            Gap("channel", "recall", None, note="1 of 4 segments are large enough")]
    decision = decide_release(METRICS, policy, baseline=Baseline("champion", {"roc_auc": 0.9}),
                              baseline_note="", gaps=gaps, latency_ms_per_1k_rows=12.0, model_size_mb=0.2)
    outcome = {(c.kind, c.metric): c.passed for c in decision.checks}
    assert outcome == {("threshold", "roc_auc"): True, ("champion", "roc_auc vs champion"): True,
                       ("slice", "recall gap across country"): False,
                       ("budget", "latency_ms_per_1k_rows"): False, ("budget", "model_size_mb"): True}
    assert not decision.approved
    assert "recall gap across channel not checked: 1 of 4 segments are large enough" in decision.notes
    payload = json.loads(decision.to_json())
    assert payload["checks"][2]["detail"].startswith("highest DE 0.8000, lowest FR 0.5000")


def test_extra_absolute_thresholds_cover_every_reported_metric() -> None:
    thresholds = standard_thresholds(-1, -1, -1, min_recall_at_precision=0.4, min_f1=0.3, max_ece=0.05)
    assert [(t.metric, t.op) for t in thresholds] == [("recall_at_precision", ">="), ("f1", ">="),
                                                      ("ece", "<=")]
    decision = decide({"recall_at_precision": 0.5, "f1": 0.2, "ece": 0.01}, thresholds)
    assert [c.passed for c in decision.checks] == [True, False, True]


def test_no_configured_check_is_stated() -> None:
    decision = decide_release(METRICS, GatePolicy(), baseline=None, baseline_note="", gaps=[],
                              latency_ms_per_1k_rows=1.0, model_size_mb=1.0)
    assert decision.approved and "no check is configured" in decision.notes[0]
