"""The quality gate: every threshold checked, reasons for each, errors for unmeasured metrics."""

from __future__ import annotations

import json

import pytest

from kfp_cicd.components.evaluate.gate import Threshold, decide, standard_thresholds

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
    with pytest.raises(ValueError, match="not measured: \\['ece'\\]"):
        decide(METRICS, [Threshold("ece", "<=", 0.1)])


def test_unknown_operator_is_refused() -> None:
    with pytest.raises(ValueError, match="operator"):
        Threshold("roc_auc", ">", 0.5)


def test_decision_json_lists_every_check() -> None:
    payload = json.loads(decide(METRICS, standard_thresholds(0.95, 0.3, -1)).to_json())
    assert payload["approved"] is False
    assert {c["metric"] for c in payload["checks"]} == {"roc_auc", "pr_auc"}
    assert payload["checks"][0]["value"] == pytest.approx(0.91)
