"""The evaluation task: score candidate and champion on the holdout, measure, decide, write artifacts.

Order of work: load and verify the candidate; score the holdout; choose the operating threshold
from the error costs; compute the holdout metrics there; fetch and score the champion on the same
rows; slice; time the predictions; let the gate decide; then write the KFP artifacts (metrics,
classification metrics, decision, HTML report, Markdown model card, audit record) and the
operating model: the candidate with the chosen threshold in its config, which is what register_model
registers.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from kfp_cicd.components.evaluate.audit_record import AuditContext, build_audit_record, write_audit_record
from kfp_cicd.components.evaluate.budget import LATENCY_REPEATS, measure_inference_cost
from kfp_cicd.components.evaluate.champion import ChampionModel, fetch_champion
from kfp_cicd.components.evaluate.gate import (
    Baseline,
    GateDecision,
    GatePolicy,
    Threshold,
    decide,
    decide_release,
)
from kfp_cicd.components.evaluate.metrics import (
    DEFAULT_TARGET_PRECISION,
    ClassificationReport,
    classification_report,
)
from kfp_cicd.components.evaluate.model_card import render_model_card
from kfp_cicd.components.evaluate.operating_point import (
    ErrorCosts,
    choose_operating_point,
    expected_cost,
)
from kfp_cicd.components.evaluate.outcome import ChampionScores, EvaluationOutcome, candidate_metrics
from kfp_cicd.components.evaluate.report import render_report
from kfp_cicd.components.evaluate.slices import SliceKey, slice_report
from kfp_cicd.data.tables import read_table
from kfp_cicd.errors import DataError
from kfp_cicd.model.integrity import verify_model
from kfp_cicd.model.packaging import update_model_config
from kfp_cicd.model.preprocessing import label_vector

log = logging.getLogger(__name__)
CLASS_NAMES = ["legitimate", "fraud"]


@dataclass(frozen=True)
class Evaluation:
    report: ClassificationReport
    decision: GateDecision


@dataclass(frozen=True)
class LoadedModel:
    """A verified, loaded pyfunc model and its packaged config."""

    model_dir: Path
    predict: Callable[[pd.DataFrame], pd.DataFrame]
    config: dict

    @property
    def threshold(self) -> float:
        return float(self.config["decision_threshold"])

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities of the positive class for every row of ``frame`` (label dropped)."""
        features = frame.drop(columns=[self.config["label"]], errors="ignore")
        return self.predict(features)["probability"].to_numpy(dtype=np.float64)


def load_model(model_dir: str | Path, expected_digest: str | None = None) -> LoadedModel:
    """Verify the checksums, then load the MLflow pyfunc model."""
    verify_model(model_dir, expected_digest)
    model = mlflow.pyfunc.load_model(str(model_dir))
    return LoadedModel(Path(model_dir), model.predict, dict(model.unwrap_python_model().config))


def score_holdout(model_dir: str | Path, eval_data: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Load the MLflow pyfunc model and score the holdout: (labels, probabilities, threshold)."""
    model = load_model(model_dir)
    frame = read_table(eval_data)
    labels = label_vector(frame, model.config["label"])
    log.info("scored %d holdout rows", len(labels))
    return labels, model.scores(frame), model.threshold


def evaluate_model(model_dir: str | Path, eval_data: str,
                   thresholds: list[Threshold]) -> Evaluation:
    """Holdout metrics of the model at its own threshold and the absolute gate's decision on them."""
    labels, scores, threshold = score_holdout(model_dir, eval_data)
    report = classification_report(labels, scores, threshold)
    return Evaluation(report, decide(report.metrics, thresholds))


@dataclass(frozen=True)
class EvaluationSettings:
    """Every knob of the evaluation, from the pipeline's parameters."""

    policy: GatePolicy = field(default_factory=GatePolicy)
    target_precision: float = DEFAULT_TARGET_PRECISION
    costs: ErrorCosts = field(default_factory=lambda: ErrorCosts(-1.0, -1.0))
    slice_keys: tuple[SliceKey, ...] = ()
    min_slice_rows: int = 200
    min_slice_positives: int = 10
    tracking_uri: str = ""
    model_name: str = ""
    latency_repeats: int = LATENCY_REPEATS

    def parameters(self) -> dict:
        """What the audit record lists as the evaluation's parameters."""
        return {"target_precision": self.target_precision,
                "cost_false_negative": self.costs.false_negative,
                "cost_false_positive": self.costs.false_positive,
                "slice_keys": [k.label for k in self.slice_keys], "min_slice_rows": self.min_slice_rows,
                "min_slice_positives": self.min_slice_positives, "tracking_uri": self.tracking_uri,
                "model_name": self.model_name}


def score_champion(champion: ChampionModel, frame: pd.DataFrame, labels: np.ndarray,
                   settings: EvaluationSettings) -> ChampionScores:
    """The champion on the same rows, at the threshold it ships with, with the same error costs."""
    model = load_model(champion.model_dir)
    if model.config["label"] not in frame.columns:
        raise DataError(f"{champion.label} predicts label {model.config['label']!r}, which the holdout "
                        "does not have: the candidate and the champion solve different problems")
    try:
        scores = model.scores(frame)
    except (ValueError, KeyError) as exc:
        raise DataError(f"{champion.label} cannot score this holdout ({exc}); the feature set changed. "
                        "Compare on data both can read, or set champion_metrics to '' to skip the "
                        "comparison for this release") from exc
    report = classification_report(labels, scores, model.threshold, settings.target_precision)
    if settings.costs.enabled:
        report.metrics["expected_cost"] = expected_cost(labels, scores, model.threshold, settings.costs)
    return ChampionScores(champion.label, champion.version, scores, report)


def evaluate_release(model_dir: str | Path, frame: pd.DataFrame, settings: EvaluationSettings,
                     work_dir: str | Path) -> tuple[EvaluationOutcome, LoadedModel]:
    """Everything the gate needs, measured on ``frame``, and the gate's decision."""
    candidate = load_model(model_dir)
    labels = label_vector(frame, candidate.config["label"])
    scores = candidate.scores(frame)
    log.info("scored %d holdout rows with the candidate", len(labels))
    point = choose_operating_point(labels, scores, settings.costs, candidate.threshold)
    log.info("%s", point.sentence())
    report = classification_report(labels, scores, point.threshold, settings.target_precision)
    lookup = fetch_champion(settings.tracking_uri, settings.model_name, work_dir)
    champion = score_champion(lookup.champion, frame, labels, settings) if lookup.champion else None
    slices = slice_report(frame, labels, scores, point.threshold, list(settings.slice_keys),
                          min_rows=settings.min_slice_rows, min_positives=settings.min_slice_positives)
    features = frame.drop(columns=[candidate.config["label"]])
    inference = measure_inference_cost(candidate.predict, features, model_dir, settings.latency_repeats)
    metrics = candidate_metrics(report, point, inference)
    baseline = Baseline(champion.label, champion.report.metrics) if champion else None
    decision = decide_release(metrics, settings.policy, baseline=baseline, baseline_note=lookup.note,
                              gaps=slices.gaps, latency_ms_per_1k_rows=inference.latency_ms_per_1k_rows,
                              model_size_mb=inference.model_size_mb)
    outcome = EvaluationOutcome(labels, scores, report, point, champion, lookup.note, slices, inference,
                                settings.policy, decision)
    return outcome, candidate


def write_operating_model(model_dir: str | Path, destination: str | Path, threshold: float) -> str:
    """Copy the candidate to ``destination`` with ``threshold`` in its config; returns its digest."""
    destination = Path(destination)
    if destination.exists():
        if any(destination.iterdir()):
            raise FileExistsError(f"{destination} is not empty; refusing to overwrite it")
        destination.rmdir()
    shutil.copytree(model_dir, destination, ignore=shutil.ignore_patterns("__pycache__"))
    update_model_config(destination, decision_threshold=float(threshold))
    return verify_model(destination)


@dataclass(frozen=True)
class OutputPaths:
    """Where the task writes its file artifacts."""

    decision: str
    operating_model: str
    report: str
    model_card: str
    audit_record: str


@dataclass(frozen=True)
class MetricSinks:
    """The KFP ``Metrics`` / ``ClassificationMetrics`` logging calls."""

    log_metric: Callable[[str, float], None]
    log_confusion_matrix: Callable[[list[str], list[list[int]]], None]
    log_roc_curve: Callable[[list[float], list[float], list[float]], None]


@dataclass(frozen=True)
class TaskResult:
    approved: bool
    operating_threshold: float
    model_digest: str
    record: dict


def _write_text(path: str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")


def run_evaluation_task(*, model_dir: str, eval_data: str, settings: EvaluationSettings,
                        context: AuditContext, sinks: MetricSinks, outputs: OutputPaths) -> TaskResult:
    """The KFP task body; returns the gate's decision (reasons in ``outputs.decision`` and the log)."""
    frame = read_table(eval_data)
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-evaluate-") as work_dir:
        outcome, candidate = evaluate_release(model_dir, frame, settings, work_dir)
    for name, value in outcome.metrics.items():
        sinks.log_metric(name, float(value))
    sinks.log_confusion_matrix(CLASS_NAMES, outcome.report.confusion_matrix)
    sinks.log_roc_curve(outcome.report.roc_fpr, outcome.report.roc_tpr, outcome.report.roc_thresholds)
    _write_text(outputs.decision, outcome.decision.to_json())
    digest = write_operating_model(model_dir, outputs.operating_model, outcome.operating_point.threshold)
    record = build_audit_record(
        outcome, context, model_digest=digest, candidate_digest=verify_model(model_dir),
        model_config=candidate.config, eval_frame=frame, model_dir=model_dir,
        parameters=settings.parameters())
    write_audit_record(record, outputs.audit_record)
    _write_text(outputs.model_card, render_model_card(record))
    title = f"Evaluation of {context.model_name or 'the candidate'}"
    _write_text(outputs.report, render_report(outcome, title=title))
    verdict = "APPROVED" if outcome.decision.approved else "REJECTED"
    log.info("gate %s:\n  %s", verdict, "\n  ".join(outcome.decision.reasons))
    return TaskResult(outcome.decision.approved, outcome.operating_point.threshold, digest, record)
