"""The quality gate: every threshold checked, reasons for each, errors for unmeasured metrics."""

from __future__ import annotations

import json

import pytest

from kfp_cicd.components.evaluate.gate import (
    BASELINE,
    BASELINE_OFF_NOTE,
    GatePolicy,
    Reference,
    Threshold,
    baseline_checks,
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


@pytest.mark.parametrize(
    ("thresholds", "failing"),
    [
        ((0.95, 0.3, 0.25), "roc_auc"),
        ((0.9, 0.4, 0.25), "pr_auc"),
        ((0.9, 0.3, 0.1), "log_loss"),
    ],
)
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
    champion = Reference("champion m version 3", {"roc_auc": 0.895, "log_loss": 0.24, "pr_auc": 0.40})
    checks = {
        c.metric: c
        for c in champion_checks(candidate, champion, ["roc_auc", "log_loss", "pr_auc"], margin=0.02)
    }
    assert checks["roc_auc vs champion"].passed, "0.89 >= 0.895 - 0.02"
    assert checks["roc_auc vs champion"].threshold == pytest.approx(0.875)
    assert checks["log_loss vs champion"].op == "<=" and checks["log_loss vs champion"].passed
    assert not checks["pr_auc vs champion"].passed
    assert "version 3: 0.4000" in checks["pr_auc vs champion"].detail
    with pytest.raises(ValueError, match="not measured"):
        champion_checks(candidate, champion, ["ece"], margin=0.0)


def test_release_decision_says_when_there_is_no_champion() -> None:
    policy = GatePolicy(thresholds=standard_thresholds(0.8, -1, -1), champion_metrics=("roc_auc",))
    decision = decide_release(
        METRICS,
        policy,
        champion=None,
        champion_note="first release: no champion",
        gaps=[],
        latency_ms_per_1k_rows=5.0,
        model_size_mb=1.0,
    )
    assert decision.approved
    assert decision.notes == (BASELINE_OFF_NOTE, "champion comparison not made: first release: no champion")
    assert decision.reasons[-1].startswith("champion comparison not made")


def test_release_decision_combines_every_kind_of_check() -> None:
    policy = GatePolicy(
        thresholds=standard_thresholds(0.8, -1, -1),
        champion_metrics=("roc_auc",),
        champion_margin=0.0,
        max_recall_gap=0.2,
        max_fpr_gap=-1,
        max_latency_ms_per_1k_rows=10.0,
        max_model_size_mb=0.5,
    )
    gaps = [
        Gap("country", "recall", 0.3, "DE", 0.8, "FR", 0.5, 4),
        Gap("country", "false_positive_rate", 0.01, "DE", 0.02, "FR", 0.01, 4),
        Gap("channel", "recall", None, note="1 of 4 segments are large enough"),
    ]
    decision = decide_release(
        METRICS,
        policy,
        champion=Reference("champion", {"roc_auc": 0.9}),
        champion_note="",
        gaps=gaps,
        latency_ms_per_1k_rows=12.0,
        model_size_mb=0.2,
    )
    outcome = {(c.kind, c.metric): c.passed for c in decision.checks}
    assert outcome == {
        ("threshold", "roc_auc"): True,
        ("champion", "roc_auc vs champion"): True,
        ("slice", "recall gap across country"): False,
        ("budget", "latency_ms_per_1k_rows"): False,
        ("budget", "model_size_mb"): True,
    }
    assert not decision.approved
    assert "recall gap across channel not checked: 1 of 4 segments are large enough" in decision.notes
    payload = json.loads(decision.to_json())
    assert payload["checks"][2]["detail"].startswith("highest DE 0.8000, lowest FR 0.5000")


def test_extra_absolute_thresholds_cover_every_reported_metric() -> None:
    thresholds = standard_thresholds(-1, -1, -1, min_recall_at_precision=0.4, min_f1=0.3, max_ece=0.05)
    assert [(t.metric, t.op) for t in thresholds] == [
        ("recall_at_precision", ">="),
        ("f1", ">="),
        ("ece", "<="),
    ]
    decision = decide({"recall_at_precision": 0.5, "f1": 0.2, "ece": 0.01}, thresholds)
    assert [c.passed for c in decision.checks] == [True, False, True]


def test_no_configured_check_is_stated() -> None:
    decision = decide_release(
        METRICS,
        GatePolicy(),
        champion=None,
        champion_note="",
        gaps=[],
        latency_ms_per_1k_rows=1.0,
        model_size_mb=1.0,
    )
    assert decision.approved and decision.notes == (
        BASELINE_OFF_NOTE,
        "no check is configured: the gate approves by default",
    )


def test_baseline_checks_are_their_own_kind_with_the_champions_direction_and_margin() -> None:
    candidate = {"roc_auc": 0.86, "log_loss": 0.09, "pr_auc": 0.30}
    baseline = Reference("logistic-regression baseline", {"roc_auc": 0.90, "log_loss": 0.07, "pr_auc": 0.31})
    checks = {
        c.metric: c
        for c in baseline_checks(candidate, baseline, ["roc_auc", "log_loss", "pr_auc"], margin=0.02)
    }
    assert {c.kind for c in checks.values()} == {BASELINE}
    roc, loss, pr = (checks[f"{name} vs baseline"] for name in ("roc_auc", "log_loss", "pr_auc"))
    assert not roc.passed and roc.op == ">=" and roc.threshold == pytest.approx(0.88), "0.86 < 0.90 - 0.02"
    assert loss.passed and loss.op == "<=" and loss.threshold == pytest.approx(0.09), "0.09 <= 0.07 + 0.02"
    assert pr.passed, "0.30 >= 0.31 - 0.02"
    assert roc.detail == "logistic-regression baseline: 0.9000, margin 0.02"
    with pytest.raises(ValueError, match="baseline margin must be >= 0"):
        baseline_checks(candidate, baseline, ["roc_auc"], margin=-0.1)
    with pytest.raises(ValueError, match=r"baseline comparison metrics .*not measured: \['ece'\]"):
        baseline_checks(candidate, baseline, ["ece"], margin=0.0)


def test_release_decision_gates_on_the_baseline_and_records_both_references() -> None:
    policy = GatePolicy(
        baseline_metrics=("roc_auc", "log_loss"),
        baseline_margin=0.02,
        champion_metrics=("roc_auc",),
        champion_margin=0.0,
    )
    baseline = Reference("logistic-regression baseline", {"roc_auc": 0.95, "log_loss": 0.1})
    decision = decide_release(
        METRICS,
        policy,
        champion=Reference("champion m version 2", {"roc_auc": 0.9}),
        champion_note="",
        baseline=baseline,
        gaps=[],
        latency_ms_per_1k_rows=1.0,
        model_size_mb=1.0,
    )
    outcome = {(c.kind, c.metric): c.passed for c in decision.checks}
    assert outcome == {
        ("baseline", "roc_auc vs baseline"): False,
        ("baseline", "log_loss vs baseline"): False,
        ("champion", "roc_auc vs champion"): True,
    }
    assert not decision.approved and BASELINE_OFF_NOTE not in decision.notes
    payload = json.loads(decision.to_json())
    assert payload["baseline"] == {
        "label": "logistic-regression baseline",
        "metrics": {"roc_auc": 0.95, "log_loss": 0.1},
    }
    assert payload["champion"]["label"] == "champion m version 2"
    assert any(r.startswith("roc_auc vs baseline = 0.9100 (required >= 0.93)") for r in payload["reasons"])


def test_baseline_on_without_a_baseline_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="baseline check is on"):
        decide_release(
            METRICS,
            GatePolicy(baseline_metrics=("roc_auc",)),
            champion=None,
            champion_note="",
            gaps=[],
            latency_ms_per_1k_rows=1.0,
            model_size_mb=1.0,
        )


def test_gap_limits_without_any_measured_slice_are_stated() -> None:
    decision = decide_release(
        METRICS,
        GatePolicy(max_recall_gap=0.1),
        champion=None,
        champion_note="",
        gaps=[],
        latency_ms_per_1k_rows=1.0,
        model_size_mb=1.0,
    )
    assert any("no slice was measured" in note for note in decision.notes)
