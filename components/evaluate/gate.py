"""The quality gate: where evaluation decides whether a model may be registered and deployed.

Every check compares one holdout metric with a threshold given as a pipeline parameter; the model
is approved only if every check passes. The decision keeps each check's value, threshold and
outcome so the reasons are visible in the KFP UI, the run summary and the model's lineage.
"""

from __future__ import annotations

import json
import operator
from dataclasses import asdict, dataclass

_COMPARATORS = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Threshold:
    """``metric op value``, e.g. ``roc_auc >= 0.85``. A threshold of ``None`` disables the check."""

    metric: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in _COMPARATORS:
            raise ValueError(f"threshold operator must be one of {sorted(_COMPARATORS)}, got {self.op!r}")


@dataclass(frozen=True)
class Check:
    """One threshold applied to one measured value."""

    metric: str
    op: str
    threshold: float
    value: float
    passed: bool

    def sentence(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return f"{self.metric} = {self.value:.4f} (required {self.op} {self.threshold:g}): {verdict}"


@dataclass(frozen=True)
class GateDecision:
    """Approved only when every check passed; ``reasons`` says why either way."""

    approved: bool
    checks: tuple[Check, ...]

    @property
    def reasons(self) -> list[str]:
        return [check.sentence() for check in self.checks]

    def to_json(self) -> str:
        return json.dumps({"approved": self.approved, "reasons": self.reasons,
                           "checks": [asdict(c) for c in self.checks]}, indent=2)


def standard_thresholds(min_roc_auc: float, min_pr_auc: float,
                        max_log_loss: float) -> list[Threshold]:
    """The pipeline's gate parameters as thresholds; a negative value switches a check off."""
    candidates = [Threshold("roc_auc", ">=", min_roc_auc), Threshold("pr_auc", ">=", min_pr_auc),
                  Threshold("log_loss", "<=", max_log_loss)]
    return [t for t in candidates if t.value >= 0]


def decide(metrics: dict[str, float], thresholds: list[Threshold]) -> GateDecision:
    """Apply every threshold; a metric the evaluation did not report is an error, not a pass."""
    missing = [t.metric for t in thresholds if t.metric not in metrics]
    if missing:
        raise ValueError(f"gate thresholds name metrics that were not measured: {missing}; "
                         f"measured: {sorted(metrics)}")
    checks = tuple(
        Check(t.metric, t.op, t.value, metrics[t.metric],
              bool(_COMPARATORS[t.op](metrics[t.metric], t.value)))
        for t in thresholds)
    return GateDecision(approved=all(c.passed for c in checks), checks=checks)
