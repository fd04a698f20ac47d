"""The cost-optimal operating threshold: matches brute force, and respects the cost ratio."""

from __future__ import annotations

import numpy as np
import pytest

from kfp_cicd.components.evaluate.operating_point import (
    MODEL_THRESHOLD_FALLBACK,
    ErrorCosts,
    choose_operating_point,
    cost_optimal_threshold,
    cost_rule,
    error_counts,
    expected_cost,
    model_threshold_rule,
)


def _scored(seed: int, rows: int = 2_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < 0.05).astype(int)
    scores = np.clip(rng.normal(0.3 + 0.35 * labels, 0.15), 0, 1).round(3)  # rounding makes ties
    return labels, scores


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("fn", "fp"), [(30.0, 1.0), (1.0, 1.0), (5.0, 2.0)])
def test_threshold_minimises_cost_like_brute_force(seed: int, fn: float, fp: float) -> None:
    labels, scores = _scored(seed)
    costs = ErrorCosts(fn, fp)
    chosen = cost_optimal_threshold(labels, scores, costs)
    brute = min(expected_cost(labels, scores, t, costs) for t in [*np.unique(scores), 1.01])
    assert expected_cost(labels, scores, chosen, costs) == pytest.approx(brute)


def test_expensive_misses_lower_the_threshold() -> None:
    labels, scores = _scored(0)
    cheap_misses = cost_optimal_threshold(labels, scores, ErrorCosts(1.0, 1.0))
    dear_misses = cost_optimal_threshold(labels, scores, ErrorCosts(50.0, 1.0))
    assert dear_misses < cheap_misses


def test_prohibitive_false_alarms_allow_none_and_may_flag_nothing() -> None:
    labels, scores = _scored(1)
    threshold = cost_optimal_threshold(labels, scores, ErrorCosts(1.0, 1e6))
    assert error_counts(labels, scores, threshold)[1] == 0
    assert error_counts(labels, scores, threshold)[0] < labels.sum(), "the sure positives are still flagged"
    labels[np.argmax(scores)] = 0  # the top score is a false alarm: flag nothing at all
    scores[labels == 1] = np.minimum(scores[labels == 1], scores.max() - 0.5)
    assert cost_optimal_threshold(labels, scores, ErrorCosts(1.0, 1e6)) > scores.max()


def test_operating_point_reports_costs_and_keeps_the_default_without_costs() -> None:
    labels, scores = _scored(2)
    point = choose_operating_point(
        labels,
        scores,
        ErrorCosts(30.0, 1.0),
        default_threshold=0.5,
        default_rule="max F1 on the validation split",
    )
    assert point.source == "cost-optimal on the holdout (FN x 30, FP x 1)"
    assert point.expected_cost_per_row <= point.default_expected_cost_per_row
    fn = int(((scores < point.threshold) & (labels == 1)).sum())
    assert point.false_negatives == fn
    assert "expected cost" in point.sentence()
    assert "chosen by: cost-optimal on the holdout (FN x 30, FP x 1)" in point.sentence()
    assert "at the model's own threshold 0.5000 (max F1 on the validation split)" in point.sentence()
    kept = choose_operating_point(labels, scores, ErrorCosts(-1.0, 1.0), default_threshold=0.42)
    assert (kept.threshold, kept.source, kept.expected_cost_per_row) == (0.42, "the model's threshold", None)


def test_without_costs_the_rule_training_recorded_is_reported() -> None:
    labels, scores = _scored(0)
    trained = "max F1 on the validation split"
    rule = model_threshold_rule({"decision_threshold": 0.31, "threshold_rule": trained})
    point = choose_operating_point(labels, scores, ErrorCosts(-1.0, -1.0), 0.31, rule)
    assert point.threshold == 0.31 and point.source == trained
    assert point.sentence().startswith(f"operating threshold 0.3100, chosen by: {trained}")
    assert model_threshold_rule({"decision_threshold": 0.5}) == MODEL_THRESHOLD_FALLBACK
    assert MODEL_THRESHOLD_FALLBACK == "the model's threshold"
    assert model_threshold_rule({"threshold_rule": "  "}) == MODEL_THRESHOLD_FALLBACK
    assert cost_rule(ErrorCosts(2.5, 1.0)) == "cost-optimal on the holdout (FN x 2.5, FP x 1)"
