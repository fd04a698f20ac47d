"""The quality gate: the one place where evaluation decides whether a model may ship.

The decision is made from five kinds of checks, each comparing one measured value with a limit
given as a pipeline parameter:

- ``threshold``: absolute bars on holdout metrics (ROC AUC, PR AUC, recall at a fixed precision,
  F1, log loss, expected calibration error);
- ``baseline``: the candidate may not be worse, by more than a margin, than a plain logistic
  regression fitted on its own training data and preprocessing and scored on the same holdout (a
  network that loses to a linear model is broken or overfitted; switched off: said so in the notes);
- ``champion``: the candidate may not be worse than the registry's champion, scored on the same
  holdout, by more than a margin (first run, no champion: said so in the notes, nothing compared);
- ``slice``: the largest gap in recall and in false-positive rate between the segments of a slice
  key;
- ``budget``: prediction latency per 1,000 rows and model size.

The model is approved only if every check passes. The decision keeps each check's value, limit,
outcome and detail so the reasons are visible in the KFP UI, the run summary, the model card and
the model's registry tags.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

from kfp_cicd.components.evaluate.metrics import LOWER_IS_BETTER
from kfp_cicd.components.evaluate.slices import Gap

_COMPARATORS = {">=": operator.ge, "<=": operator.le}
THRESHOLD, BASELINE, CHAMPION, SLICE, BUDGET = "threshold", "baseline", "champion", "slice", "budget"


@dataclass(frozen=True)
class Threshold:
    """``metric op value``, e.g. ``roc_auc >= 0.85``."""

    metric: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in _COMPARATORS:
            raise ValueError(f"threshold operator must be one of {sorted(_COMPARATORS)}, got {self.op!r}")


@dataclass(frozen=True)
class Check:
    """One limit applied to one measured value."""

    metric: str
    op: str
    threshold: float
    value: float
    passed: bool
    kind: str = THRESHOLD
    detail: str = ""

    def sentence(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        detail = f" [{self.detail}]" if self.detail else ""
        return f"{self.metric} = {self.value:.4f} (required {self.op} {self.threshold:g}){detail}: {verdict}"


@dataclass(frozen=True)
class GateDecision:
    """Approved only when every check passed; ``reasons`` says why either way, ``notes`` what was
    not checked and why (e.g. no champion yet)."""

    approved: bool
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()  # the models compared with (baseline, champion)

    @property
    def reasons(self) -> list[str]:
        return [check.sentence() for check in self.checks] + list(self.notes)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict:
        return {
            "approved": self.approved,
            "reasons": self.reasons,
            "notes": list(self.notes),
            "checks": [asdict(c) for c in self.checks],
            **{r.kind: {"label": r.label, "metrics": r.metrics} for r in self.references},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _apply(
    metric: str, op: str, limit: float, value: float, kind: str = THRESHOLD, detail: str = ""
) -> Check:
    return Check(metric, op, float(limit), float(value), bool(_COMPARATORS[op](value, limit)), kind, detail)


def standard_thresholds(
    min_roc_auc: float,
    min_pr_auc: float,
    max_log_loss: float,
    *,
    min_recall_at_precision: float = -1.0,
    min_f1: float = -1.0,
    max_ece: float = -1.0,
) -> list[Threshold]:
    """The pipeline's absolute gate parameters as thresholds; a negative value switches a check off."""
    candidates = [
        Threshold("roc_auc", ">=", min_roc_auc),
        Threshold("pr_auc", ">=", min_pr_auc),
        Threshold("recall_at_precision", ">=", min_recall_at_precision),
        Threshold("f1", ">=", min_f1),
        Threshold("log_loss", "<=", max_log_loss),
        Threshold("ece", "<=", max_ece),
    ]
    return [t for t in candidates if t.value >= 0]


def _require_measured(names: Iterable[str], metrics: dict[str, float], what: str) -> None:
    missing = [n for n in names if n not in metrics]
    if missing:
        raise ValueError(
            f"{what} name metrics that were not measured: {missing}; measured: {sorted(metrics)}"
        )


def threshold_checks(metrics: dict[str, float], thresholds: list[Threshold]) -> list[Check]:
    """Apply every absolute threshold; a metric the evaluation did not report is an error."""
    _require_measured([t.metric for t in thresholds], metrics, "gate thresholds")
    return [_apply(t.metric, t.op, t.value, metrics[t.metric]) for t in thresholds]


def decide(metrics: dict[str, float], thresholds: list[Threshold]) -> GateDecision:
    """Absolute thresholds only (the gate without champion, slices or budget)."""
    checks = tuple(threshold_checks(metrics, thresholds))
    return GateDecision(approved=all(c.passed for c in checks), checks=checks)


def parse_metric_names(text: str) -> tuple[str, ...]:
    """``"roc_auc, pr_auc"`` → ``("roc_auc", "pr_auc")``; empty → none."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


@dataclass(frozen=True)
class Reference:
    """A model the candidate is compared with, scored on the same holdout.

    ``kind`` is the check kind (``baseline`` or ``champion``); ``label`` names the model in every
    reason, e.g. ``champion churn version 3`` or ``logistic-regression baseline``.
    """

    label: str
    metrics: dict[str, float]
    kind: str = CHAMPION


def comparison_checks(
    candidate: dict[str, float], reference: Reference, compared: Iterable[str], margin: float
) -> list[Check]:
    """Not worse than ``reference`` by more than ``margin`` on each compared metric.

    Higher-is-better metrics need ``candidate >= reference - margin``; lower-is-better ones (log
    loss, ECE, expected cost, false-positive rate) need ``candidate <= reference + margin``. The
    checks are of ``reference.kind`` and named ``"<metric> vs <kind>"``.
    """
    if margin < 0:
        raise ValueError(f"{reference.kind} margin must be >= 0, got {margin}")
    compared = list(compared)
    _require_measured(compared, candidate, f"{reference.kind} comparison metrics")
    _require_measured(
        compared, reference.metrics, f"{reference.kind} comparison metrics (for {reference.label})"
    )
    checks = []
    for name in compared:
        value = reference.metrics[name]
        lower = name in LOWER_IS_BETTER
        limit = value + margin if lower else value - margin
        detail = f"{reference.label}: {value:.4f}, margin {margin:g}"
        checks.append(
            _apply(
                f"{name} vs {reference.kind}",
                "<=" if lower else ">=",
                limit,
                candidate[name],
                reference.kind,
                detail,
            )
        )
    return checks


def champion_checks(
    candidate: dict[str, float], champion: Reference, compared: Iterable[str], margin: float
) -> list[Check]:
    """:func:`comparison_checks` against the registry's champion (checks of kind ``champion``)."""
    return comparison_checks(candidate, replace(champion, kind=CHAMPION), compared, margin)


def baseline_checks(
    candidate: dict[str, float], baseline: Reference, compared: Iterable[str], margin: float
) -> list[Check]:
    """:func:`comparison_checks` against the logistic-regression baseline (checks of kind ``baseline``)."""
    return comparison_checks(candidate, replace(baseline, kind=BASELINE), compared, margin)


def slice_checks(
    gaps: Iterable[Gap], max_recall_gap: float, max_fpr_gap: float
) -> tuple[list[Check], list[str]]:
    """One check per measured (key, rate) gap whose limit is set; notes for unmeasurable ones."""
    limits = {"recall": max_recall_gap, "false_positive_rate": max_fpr_gap}
    checks, notes = [], []
    for gap in gaps:
        limit = limits.get(gap.metric, -1.0)
        if limit < 0:
            continue
        if gap.gap is None:
            notes.append(f"{gap.metric} gap across {gap.key} not checked: {gap.note}")
            continue
        detail = (
            f"highest {gap.highest} {gap.highest_value:.4f}, lowest {gap.lowest} "
            f"{gap.lowest_value:.4f}, {gap.measured_segments} segments"
        )
        checks.append(_apply(f"{gap.metric} gap across {gap.key}", "<=", limit, gap.gap, SLICE, detail))
    return checks, notes


def budget_checks(
    latency_ms_per_1k_rows: float,
    model_size_mb: float,
    max_latency_ms_per_1k_rows: float,
    max_model_size_mb: float,
) -> list[Check]:
    """The inference budget, where the user set one (negative: not checked)."""
    checks = []
    if max_latency_ms_per_1k_rows >= 0:
        checks.append(
            _apply("latency_ms_per_1k_rows", "<=", max_latency_ms_per_1k_rows, latency_ms_per_1k_rows, BUDGET)
        )
    if max_model_size_mb >= 0:
        checks.append(_apply("model_size_mb", "<=", max_model_size_mb, model_size_mb, BUDGET))
    return checks


@dataclass(frozen=True)
class GatePolicy:
    """Every limit the pipeline's parameters set (negative numbers switch a limit off)."""

    thresholds: list[Threshold] = field(default_factory=list)
    champion_metrics: tuple[str, ...] = ()
    champion_margin: float = 0.0
    baseline_metrics: tuple[str, ...] = ()  # empty: the baseline check is off (and the notes say so)
    baseline_margin: float = 0.0
    max_recall_gap: float = -1.0
    max_fpr_gap: float = -1.0
    max_latency_ms_per_1k_rows: float = -1.0
    max_model_size_mb: float = -1.0

    def to_dict(self) -> dict:
        return asdict(self)


BASELINE_OFF_NOTE = (
    "baseline check off (baseline_metrics is empty): the candidate was not compared with "
    "a logistic regression on its own training data and preprocessing"
)


def decide_release(
    metrics: dict[str, float],
    policy: GatePolicy,
    *,
    champion: Reference | None,
    champion_note: str,
    baseline: Reference | None = None,
    gaps: Iterable[Gap],
    latency_ms_per_1k_rows: float,
    model_size_mb: float,
) -> GateDecision:
    """The release decision: approved only if every absolute, baseline, champion, slice and budget
    check holds.

    ``champion`` None means there is nothing to compare with (first release, or no registry given);
    ``champion_note`` says which, and the decision records it instead of silently passing. The
    baseline must be given when ``policy.baseline_metrics`` names metrics; with none named the notes
    say the baseline check is off.
    """
    checks = threshold_checks(metrics, policy.thresholds)
    notes: list[str] = []
    if policy.baseline_metrics:
        if baseline is None:
            raise ValueError(
                "the baseline check is on (baseline_metrics "
                f"{list(policy.baseline_metrics)}) but no baseline was fitted"
            )
        checks += baseline_checks(metrics, baseline, policy.baseline_metrics, policy.baseline_margin)
    else:
        notes.append(BASELINE_OFF_NOTE)
    if policy.champion_metrics:
        if champion is None:
            notes.append(f"champion comparison not made: {champion_note}")
        else:
            checks += champion_checks(metrics, champion, policy.champion_metrics, policy.champion_margin)
    gaps = list(gaps)
    found, slice_notes = slice_checks(gaps, policy.max_recall_gap, policy.max_fpr_gap)
    checks += found
    notes += slice_notes
    if (policy.max_recall_gap >= 0 or policy.max_fpr_gap >= 0) and not gaps:
        notes.append(
            "slice gap limits are set but no slice was measured (no slice key, or slice_keys='auto' "
            "found no low-cardinality categorical column): no slice check made"
        )
    checks += budget_checks(
        latency_ms_per_1k_rows, model_size_mb, policy.max_latency_ms_per_1k_rows, policy.max_model_size_mb
    )
    if not checks:
        notes.append("no check is configured: the gate approves by default")
    references = tuple(replace(r, kind=k) for r, k in ((baseline, BASELINE), (champion, CHAMPION)) if r)
    return GateDecision(
        approved=all(c.passed for c in checks),
        checks=tuple(checks),
        notes=tuple(notes),
        references=references,
    )
