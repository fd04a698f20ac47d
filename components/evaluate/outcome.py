"""Everything one evaluation measured and decided: the input of the report and the model card."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kfp_cicd.components.evaluate.baseline import BaselineScores
from kfp_cicd.components.evaluate.budget import InferenceCost
from kfp_cicd.components.evaluate.gate import BASELINE_OFF_NOTE, GateDecision, GatePolicy
from kfp_cicd.components.evaluate.metrics import ClassificationReport
from kfp_cicd.components.evaluate.operating_point import OperatingPoint
from kfp_cicd.components.evaluate.slices import SliceReport
from kfp_cicd.model.labels import BinaryLabels


@dataclass(frozen=True)
class ChampionScores:
    """The champion scored on the same holdout at its own shipped threshold."""

    label: str
    version: str
    scores: np.ndarray
    report: ClassificationReport


@dataclass(frozen=True)
class EvaluationOutcome:
    """The candidate's holdout results at its operating threshold, the baseline's and the champion's,
    and the decision. ``classes`` names the label's classes (which is positive, and why)."""

    labels: np.ndarray
    scores: np.ndarray
    report: ClassificationReport
    operating_point: OperatingPoint
    champion: ChampionScores | None
    champion_note: str
    slices: SliceReport
    inference: InferenceCost
    policy: GatePolicy
    decision: GateDecision
    classes: BinaryLabels
    baseline: BaselineScores | None = None

    @property
    def metrics(self) -> dict[str, float]:
        """Candidate metrics plus expected cost and inference cost (what the gate can check)."""
        return candidate_metrics(self.report, self.operating_point, self.inference)

    @property
    def logged_metrics(self) -> dict[str, float]:
        """What the KFP metrics artifact shows: the candidate's metrics and ``baseline_*`` ones."""
        return {**self.metrics, **(self.baseline.logged_metrics() if self.baseline else {})}

    @property
    def baseline_note(self) -> str:
        """The baseline's description, or why there is none."""
        return self.baseline.sentence() if self.baseline else BASELINE_OFF_NOTE


def candidate_metrics(
    report: ClassificationReport, operating_point: OperatingPoint, inference: InferenceCost
) -> dict[str, float]:
    """Holdout metrics at the operating threshold, its expected cost, latency and size."""
    values = dict(report.metrics)
    if operating_point.expected_cost_per_row is not None:
        values["expected_cost"] = operating_point.expected_cost_per_row
    values["latency_ms_per_1k_rows"] = inference.latency_ms_per_1k_rows
    values["model_size_mb"] = inference.model_size_mb
    return values
