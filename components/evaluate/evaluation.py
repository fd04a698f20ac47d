"""The evaluation task: score candidate, baseline and champion on the holdout, measure, decide, write.

Order of work: load and verify the candidate; score the holdout; choose the operating threshold
(the rule training recorded, or cost-optimal when error costs are given); compute the holdout
metrics there; fit the logistic-regression baseline on the candidate's training data and
preprocessing and score it on the same rows; fetch and score the champion on the same rows; slice;
time the predictions; let the gate decide; then write the KFP artifacts (metrics, classification
metrics, decision, HTML report, Markdown model card, audit record) and the operating model: the
candidate with the chosen threshold in its config, which is what register_model registers.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from kfp_cicd.components.evaluate.audit_record import AuditContext, build_audit_record, write_audit_record
from kfp_cicd.components.evaluate.baseline import (
    MAX_ROWS,
    BaselineScores,
    model_matrix,
    score_baseline,
    train_baseline,
)
from kfp_cicd.components.evaluate.budget import LATENCY_REPEATS, measure_inference_cost
from kfp_cicd.components.evaluate.champion import ChampionModel, fetch_champion
from kfp_cicd.components.evaluate.gate import (
    BASELINE,
    CHAMPION,
    GatePolicy,
    Reference,
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
    model_threshold_rule,
)
from kfp_cicd.components.evaluate.outcome import ChampionScores, EvaluationOutcome, candidate_metrics
from kfp_cicd.components.evaluate.report import render_report
from kfp_cicd.components.evaluate.slices import SliceKey, SliceReport, auto_slice_keys, slice_report
from kfp_cicd.data.tables import read_table
from kfp_cicd.errors import DataError
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.integrity import verify_model
from kfp_cicd.model.labels import BinaryLabels
from kfp_cicd.model.packaging import update_model_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A verified, loaded pyfunc model and its packaged config."""

    model_dir: Path
    predict: Callable[[pd.DataFrame], pd.DataFrame]
    config: dict
    preprocessor: Any = None  # the fitted scikit-learn preprocessor (artifacts/preprocessor.skops)

    @property
    def threshold(self) -> float:
        return float(self.config["decision_threshold"])

    @property
    def threshold_rule(self) -> str:
        """How training chose :attr:`threshold` (older models: "the model's threshold")."""
        return model_threshold_rule(self.config)

    @property
    def feature_spec(self) -> FeatureSpec:
        """The model's label and feature columns, as its preprocessor reads them."""
        return FeatureSpec(
            self.config["label"],
            tuple(self.config["numeric"]),
            tuple(self.config["categorical"]),
            self.labels,
        )

    @property
    def labels(self) -> BinaryLabels:
        """The model's two classes (models packaged before labels were recorded: 0/1)."""
        return BinaryLabels.from_dict(self.config.get("labels", {}), self.config["label"])

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities of the positive class for every row of ``frame`` (label dropped)."""
        features = frame.drop(columns=[self.config["label"]], errors="ignore")
        return self.predict(features)["probability"].to_numpy(dtype=np.float64)


def load_model(model_dir: str | Path, expected_digest: str | None = None) -> LoadedModel:
    """Verify the checksums, then load the MLflow pyfunc model."""
    verify_model(model_dir, expected_digest)
    model = mlflow.pyfunc.load_model(str(model_dir))
    python_model = model.unwrap_python_model()
    return LoadedModel(
        Path(model_dir), model.predict, dict(python_model.config), getattr(python_model, "preprocessor", None)
    )


@dataclass(frozen=True)
class EvaluationSettings:
    """Every knob of the evaluation, from the pipeline's parameters."""

    policy: GatePolicy = field(default_factory=GatePolicy)
    target_precision: float = DEFAULT_TARGET_PRECISION
    costs: ErrorCosts = field(default_factory=lambda: ErrorCosts(-1.0, -1.0))
    slice_keys: tuple[SliceKey, ...] = ()
    auto_slices: bool = False  # slice_keys "auto": also slice by the low-cardinality categoricals
    min_slice_rows: int = 200
    min_slice_positives: int = 10
    tracking_uri: str = ""
    model_name: str = ""
    latency_repeats: int = LATENCY_REPEATS
    baseline_max_rows: int = MAX_ROWS

    def parameters(self) -> dict:
        """What the audit record lists as the evaluation's parameters."""
        return {
            "target_precision": self.target_precision,
            "cost_false_negative": self.costs.false_negative,
            "cost_false_positive": self.costs.false_positive,
            "slice_keys": [k.label for k in self.slice_keys] + (["auto"] if self.auto_slices else []),
            "min_slice_rows": self.min_slice_rows,
            "min_slice_positives": self.min_slice_positives,
            "tracking_uri": self.tracking_uri,
            "model_name": self.model_name,
            "baseline_max_rows": self.baseline_max_rows,
        }


def holdout_metrics(
    labels: np.ndarray, scores: np.ndarray, threshold: float, settings: EvaluationSettings
) -> ClassificationReport:
    """A compared model's holdout report at ``threshold``, with its expected cost when costs are given."""
    report = classification_report(labels, scores, threshold, settings.target_precision)
    if settings.costs.enabled:
        report.metrics["expected_cost"] = expected_cost(labels, scores, threshold, settings.costs)
    return report


def score_champion(
    champion: ChampionModel, frame: pd.DataFrame, labels: np.ndarray, settings: EvaluationSettings
) -> ChampionScores:
    """The champion on the same rows, at the threshold it ships with, with the same error costs."""
    model = load_model(champion.model_dir)
    if model.config["label"] not in frame.columns:
        raise DataError(
            f"{champion.label} predicts label {model.config['label']!r}, which the holdout "
            "does not have: the candidate and the champion solve different problems"
        )
    try:
        scores = model.scores(frame)
    except (ValueError, KeyError) as exc:
        raise DataError(
            f"{champion.label} cannot score this holdout ({exc}); the feature set changed. "
            "Compare on data both can read, or set champion_metrics to '' to skip the "
            "comparison for this release"
        ) from exc
    return ChampionScores(
        champion.label, champion.version, scores, holdout_metrics(labels, scores, model.threshold, settings)
    )


def fit_and_score_baseline(
    candidate: LoadedModel,
    train_data: str,
    frame: pd.DataFrame,
    labels: np.ndarray,
    settings: EvaluationSettings,
) -> BaselineScores:
    """The logistic-regression baseline on the candidate's training data and fitted preprocessor,
    scored on the holdout ``frame``."""
    if candidate.preprocessor is None:
        raise DataError(
            f"the candidate at {candidate.model_dir} has no fitted preprocessor to fit the "
            "baseline on; set baseline_metrics to '' to switch the baseline check off"
        )
    spec = candidate.feature_spec
    fit = train_baseline(
        train_data, candidate.preprocessor, spec, candidate.labels, max_rows=settings.baseline_max_rows
    )
    return score_baseline(
        fit,
        model_matrix(candidate.preprocessor, frame, spec),
        labels,
        settings.costs,
        settings.target_precision,
    )


def slice_keys_for(
    settings: EvaluationSettings, frame: pd.DataFrame, categorical: list[str]
) -> tuple[list[SliceKey], str]:
    """The explicit slice keys plus, for "auto", the low-cardinality categoricals; and how "auto" chose."""
    keys = list(settings.slice_keys)
    if not settings.auto_slices:
        return keys, ""
    auto = auto_slice_keys(frame, categorical)
    return keys + [k for k in auto.keys if k not in keys], auto.sentence()


def measure_slices(
    frame: pd.DataFrame,
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    settings: EvaluationSettings,
    categorical: list[str],
) -> SliceReport:
    keys, note = slice_keys_for(settings, frame, categorical)
    return slice_report(
        frame,
        labels,
        scores,
        threshold,
        keys,
        min_rows=settings.min_slice_rows,
        min_positives=settings.min_slice_positives,
        note=note,
    )


def evaluate_release(
    model_dir: str | Path,
    frame: pd.DataFrame,
    settings: EvaluationSettings,
    work_dir: str | Path,
    train_data: str = "",
) -> tuple[EvaluationOutcome, LoadedModel]:
    """Everything the gate needs, measured on ``frame``, and the gate's decision.

    ``train_data`` is the candidate's training table: the baseline is fitted on it when the policy
    has baseline metrics (then it is required).
    """
    candidate = load_model(model_dir)
    labels = candidate.labels.encode_frame(frame)
    scores = candidate.scores(frame)
    log.info("scored %d holdout rows with the candidate", len(labels))
    point = choose_operating_point(
        labels, scores, settings.costs, candidate.threshold, candidate.threshold_rule
    )
    log.info("%s", point.sentence())
    report = classification_report(labels, scores, point.threshold, settings.target_precision)
    baseline = (
        fit_and_score_baseline(candidate, train_data, frame, labels, settings)
        if settings.policy.baseline_metrics
        else None
    )
    lookup = fetch_champion(settings.tracking_uri, settings.model_name, work_dir)
    champion = score_champion(lookup.champion, frame, labels, settings) if lookup.champion else None
    slices = measure_slices(
        frame, labels, scores, point.threshold, settings, list(candidate.config["categorical"])
    )
    features = frame.drop(columns=[candidate.config["label"]])
    inference = measure_inference_cost(candidate.predict, features, model_dir, settings.latency_repeats)
    metrics = candidate_metrics(report, point, inference)
    decision = decide_release(
        metrics,
        settings.policy,
        champion=Reference(champion.label, champion.report.metrics, CHAMPION) if champion else None,
        champion_note=lookup.note,
        baseline=Reference(baseline.label, baseline.report.metrics, BASELINE) if baseline else None,
        gaps=slices.gaps,
        latency_ms_per_1k_rows=inference.latency_ms_per_1k_rows,
        model_size_mb=inference.model_size_mb,
    )
    outcome = EvaluationOutcome(
        labels,
        scores,
        report,
        point,
        champion,
        lookup.note,
        slices,
        inference,
        settings.policy,
        decision,
        candidate.labels,
        baseline,
    )
    return outcome, candidate


def write_operating_model(
    model_dir: str | Path, destination: str | Path, threshold: float, threshold_rule: str = ""
) -> str:
    """Copy the candidate to ``destination`` with ``threshold`` in its config; returns its digest.

    ``threshold_rule`` (how ``threshold`` was chosen) replaces training's rule in the config, so the
    shipped model names the rule of the threshold it ships with.
    """
    destination = Path(destination)
    if destination.exists():
        if any(destination.iterdir()):
            raise FileExistsError(f"{destination} is not empty; refusing to overwrite it")
        destination.rmdir()
    shutil.copytree(model_dir, destination, ignore=shutil.ignore_patterns("__pycache__"))
    changes: dict[str, object] = {"decision_threshold": float(threshold)}
    if threshold_rule:
        changes["threshold_rule"] = threshold_rule
    update_model_config(destination, **changes)
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


def run_evaluation_task(
    *,
    model_dir: str,
    eval_data: str,
    settings: EvaluationSettings,
    context: AuditContext,
    sinks: MetricSinks,
    outputs: OutputPaths,
) -> TaskResult:
    """The KFP task body; returns the gate's decision (reasons in ``outputs.decision`` and the log)."""
    frame = read_table(eval_data)
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-evaluate-") as work_dir:
        outcome, candidate = evaluate_release(model_dir, frame, settings, work_dir, context.train_data)
    for name, value in outcome.logged_metrics.items():
        sinks.log_metric(name, float(value))
    sinks.log_confusion_matrix(candidate.labels.class_names, outcome.report.confusion_matrix)
    sinks.log_roc_curve(outcome.report.roc_fpr, outcome.report.roc_tpr, outcome.report.roc_thresholds)
    _write_text(outputs.decision, outcome.decision.to_json())
    digest = write_operating_model(
        model_dir, outputs.operating_model, outcome.operating_point.threshold, outcome.operating_point.source
    )
    record = build_audit_record(
        outcome,
        context,
        model_digest=digest,
        candidate_digest=verify_model(model_dir),
        model_config=candidate.config,
        eval_frame=frame,
        model_dir=model_dir,
        parameters=settings.parameters(),
    )
    write_audit_record(record, outputs.audit_record)
    _write_text(outputs.model_card, render_model_card(record))
    title = f"Evaluation of {context.model_name or 'the candidate'}"
    _write_text(outputs.report, render_report(outcome, title=title))
    verdict = "APPROVED" if outcome.decision.approved else "REJECTED"
    log.info("gate %s:\n  %s", verdict, "\n  ".join(outcome.decision.reasons))
    return TaskResult(outcome.decision.approved, outcome.operating_point.threshold, digest, record)
