"""The operating threshold: the probability cut-off the model ships with, and the rule that chose it.

Without error costs the model keeps the threshold training chose, and the rule training recorded
in the model's config (``threshold_rule``, e.g. "max F1 on the validation split") is reported;
models packaged before the rule was recorded say "the model's threshold". Given what a missed
positive (false negative) and a false alarm (false positive) cost, the threshold that minimises
``cost_fn * FN + cost_fp * FP`` on the holdout is chosen instead, and reported as
"cost-optimal on the holdout (FN x a, FP x b)".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from kfp_cicd.errors import DataError


@dataclass(frozen=True)
class ErrorCosts:
    """What one missed positive and one false alarm cost (any unit, e.g. currency)."""

    false_negative: float
    false_positive: float

    @property
    def enabled(self) -> bool:
        """Costs are used only when both are positive; otherwise the model's threshold stands."""
        return self.false_negative > 0 and self.false_positive > 0


MODEL_THRESHOLD_FALLBACK = "the model's threshold"


def model_threshold_rule(config: dict) -> str:
    """The rule training used to choose the model's threshold (``config["threshold_rule"]``).

    Models packaged before training recorded it: :data:`MODEL_THRESHOLD_FALLBACK`.
    """
    rule = str(config.get("threshold_rule") or "").strip()
    return rule or MODEL_THRESHOLD_FALLBACK


def cost_rule(costs: ErrorCosts) -> str:
    """How a cost-optimal threshold is described: ``cost-optimal on the holdout (FN x 30, FP x 1)``."""
    return f"cost-optimal on the holdout (FN x {costs.false_negative:g}, FP x {costs.false_positive:g})"


@dataclass(frozen=True)
class OperatingPoint:
    """The chosen threshold, the rule that chose it, and the expected cost there and at the model's own.

    ``source`` is the rule as a sentence: training's rule (``default_rule``) when no costs are
    given, :func:`cost_rule` when they are.
    """

    threshold: float
    source: str
    default_threshold: float
    expected_cost_per_row: float | None
    default_expected_cost_per_row: float | None
    false_negatives: int
    false_positives: int
    cost_false_negative: float
    cost_false_positive: float
    default_rule: str = MODEL_THRESHOLD_FALLBACK

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        if self.expected_cost_per_row is None:
            return (
                f"operating threshold {self.threshold:.4f}, chosen by: {self.source} (no error costs "
                "given, expected cost not computed)"
            )
        return (
            f"operating threshold {self.threshold:.4f}, chosen by: {self.source}: expected cost "
            f"{self.expected_cost_per_row:.4f} per row; at the model's own threshold "
            f"{self.default_threshold:.4f} ({self.default_rule}): "
            f"{self.default_expected_cost_per_row:.4f}"
        )


def error_counts(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[int, int]:
    """(false negatives, false positives) when predicting positive at ``scores >= threshold``."""
    predicted = scores >= threshold
    return int(((labels == 1) & ~predicted).sum()), int(((labels == 0) & predicted).sum())


def expected_cost(labels: np.ndarray, scores: np.ndarray, threshold: float, costs: ErrorCosts) -> float:
    """Mean cost per row at ``threshold``."""
    fn, fp = error_counts(labels, scores, threshold)
    return (costs.false_negative * fn + costs.false_positive * fp) / len(labels)


def cost_optimal_threshold(labels: np.ndarray, scores: np.ndarray, costs: ErrorCosts) -> float:
    """The cost-minimising cut-off, placed midway between adjacent distinct scores.

    Every distinct score is a candidate (plus "flag nothing"), evaluated in one vectorised pass:
    sorting by score, cumulative sums give FN and FP for each cut. Ties in cost go to the higher
    threshold (fewer alerts for the same cost).
    """
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    distinct, first = np.unique(sorted_scores, return_index=True)
    positives_below = np.concatenate([[0], np.cumsum(sorted_labels)])[first]
    negatives_below = first - positives_below
    total_negatives = int((labels == 0).sum())
    # Cut k flags every row with score >= distinct[k]; the last cut flags nothing.
    fn = np.concatenate([positives_below, [int(labels.sum())]])
    fp = np.concatenate([total_negatives - negatives_below, [0]])
    cost = costs.false_negative * fn + costs.false_positive * fp
    best = int(np.flatnonzero(cost == cost.min())[-1])
    if best == len(distinct):
        return float(np.nextafter(distinct[-1], np.inf))  # flag nothing
    if best == 0:
        return float(distinct[0])
    return float((distinct[best - 1] + distinct[best]) / 2.0)


def choose_operating_point(
    labels: np.ndarray,
    scores: np.ndarray,
    costs: ErrorCosts,
    default_threshold: float,
    default_rule: str = MODEL_THRESHOLD_FALLBACK,
) -> OperatingPoint:
    """The threshold to ship: cost-optimal when costs are given, else the model's own.

    ``default_rule`` says how the model's own threshold was chosen (:func:`model_threshold_rule`);
    it becomes the point's ``source`` when no costs are given.
    """
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or not len(labels):
        raise DataError(f"cannot choose a threshold from {len(labels)} labels and {len(scores)} scores")
    if not costs.enabled:
        fn, fp = error_counts(labels, scores, default_threshold)
        return OperatingPoint(
            threshold=default_threshold,
            source=default_rule,
            default_threshold=default_threshold,
            expected_cost_per_row=None,
            default_expected_cost_per_row=None,
            false_negatives=fn,
            false_positives=fp,
            cost_false_negative=costs.false_negative,
            cost_false_positive=costs.false_positive,
            default_rule=default_rule,
        )
    threshold = cost_optimal_threshold(labels, scores, costs)
    fn, fp = error_counts(labels, scores, threshold)
    return OperatingPoint(
        threshold=threshold,
        source=cost_rule(costs),
        default_threshold=default_threshold,
        expected_cost_per_row=expected_cost(labels, scores, threshold, costs),
        default_expected_cost_per_row=expected_cost(labels, scores, default_threshold, costs),
        false_negatives=fn,
        false_positives=fp,
        cost_false_negative=costs.false_negative,
        cost_false_positive=costs.false_positive,
        default_rule=default_rule,
    )
