"""The baseline: a plain logistic regression on the candidate's own preprocessing and training data.

A network that scores worse than a linear model fitted on the same inputs is broken (labels
misaligned, a bug in training) or overfitted, whatever its absolute metrics say. So evaluation
fits :class:`~sklearn.linear_model.LogisticRegression` (lbfgs, L2, no class weights: its
probabilities are calibrated) on the candidate's training data, transformed by the candidate's own
fitted preprocessor (not refitted, so both models see exactly the same inputs), scores it on the same
holdout, and the gate's ``baseline`` checks compare the two.

Large training data is capped at :data:`MAX_ROWS` rows by a seeded, stratified sample (both
classes keep their share); the report says so when it happens. The baseline's own threshold, used
only for its threshold-dependent metrics (precision, recall, F1), is chosen by the candidate's rule
when error costs are given (cost-optimal on the holdout), else as the best F1 on its training rows.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import train_test_split

from kfp_cicd.components.evaluate.metrics import (
    DEFAULT_TARGET_PRECISION,
    ClassificationReport,
    classification_report,
)
from kfp_cicd.components.evaluate.operating_point import ErrorCosts, choose_operating_point, expected_cost
from kfp_cicd.data.tables import read_table
from kfp_cicd.errors import DataError
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.labels import BinaryLabels
from kfp_cicd.model.preprocessing import feature_frame

log = logging.getLogger(__name__)

LABEL = "logistic-regression baseline"
MAX_ROWS = 200_000
SEED = 0
MAX_ITER = 2_000
MAX_F1_RULE = "max F1 on the baseline's training rows"
# Metrics of the baseline the KFP metrics artifact shows (as ``baseline_<name>``).
LOGGED_METRICS = (
    "roc_auc",
    "pr_auc",
    "log_loss",
    "ece",
    "recall_at_precision",
    "precision",
    "recall",
    "f1",
    "expected_cost",
    "decision_threshold",
)
_SWITCH_OFF = "or set baseline_metrics to '' to switch the baseline check off"


@dataclass(frozen=True)
class BaselineFit:
    """The fitted logistic regression and what it was fitted on."""

    model: LogisticRegression
    training_rows: int
    fitted_rows: int
    iterations: int
    converged: bool
    fitted_threshold: float  # max F1 on the rows it was fitted on

    @property
    def sampled(self) -> bool:
        return self.fitted_rows < self.training_rows


@dataclass(frozen=True)
class BaselineScores:
    """The baseline scored on the holdout, at its own threshold, beside how it was fitted."""

    label: str
    scores: np.ndarray
    report: ClassificationReport
    threshold_rule: str
    training_rows: int
    fitted_rows: int
    iterations: int
    converged: bool
    seed: int = SEED

    @property
    def sampled(self) -> bool:
        return self.fitted_rows < self.training_rows

    def sentence(self) -> str:
        """How the baseline was built, for the report and the model card."""
        rows = (
            f"a stratified sample of {self.fitted_rows:,} of the {self.training_rows:,} training rows "
            f"(seed {self.seed}, at most {MAX_ROWS:,} rows are fitted)"
            if self.sampled
            else f"all {self.training_rows:,} training rows"
        )
        fit = (
            f"converged in {self.iterations} lbfgs iterations"
            if self.converged
            else f"lbfgs stopped after {self.iterations} iterations without converging, so the "
            "baseline may be understated"
        )
        return (
            f"Baseline: logistic regression (lbfgs, L2, C=1, no class weights) on the candidate's own "
            f"fitted preprocessor, fitted on {rows}; {fit}. Its threshold "
            f"{self.report.metrics['decision_threshold']:.4f} was chosen by: {self.threshold_rule}."
        )

    def logged_metrics(self) -> dict[str, float]:
        """``baseline_<metric>`` for the KFP metrics artifact."""
        values = {
            f"baseline_{n}": float(self.report.metrics[n]) for n in LOGGED_METRICS if n in self.report.metrics
        }
        values["baseline_fitted_rows"] = float(self.fitted_rows)
        return values

    def to_dict(self) -> dict:
        """The audit record's ``baseline`` section (scores left out)."""
        return {
            "label": self.label,
            "description": self.sentence(),
            "metrics": self.report.metrics,
            "threshold_rule": self.threshold_rule,
            "training_rows": self.training_rows,
            "fitted_rows": self.fitted_rows,
            "sampled": self.sampled,
            "seed": self.seed,
            "max_rows": MAX_ROWS,
            "iterations": self.iterations,
            "converged": self.converged,
        }


def read_training_data(train_data: str) -> pd.DataFrame:
    """The training table the baseline is fitted on; errors name the ``train_data`` parameter."""
    if not (train_data or "").strip():
        raise DataError(
            "train_data is empty, but the baseline check needs the training data: pass the "
            f"table train_model trained on as train_data, {_SWITCH_OFF}"
        )
    try:
        return read_table(train_data)
    except (DataError, OSError, ValueError) as exc:
        raise DataError(
            f"train_data {train_data!r} cannot be read for the baseline check: {exc}. Pass the "
            f"table train_model trained on, {_SWITCH_OFF}"
        ) from exc


def stratified_sample(labels: np.ndarray, max_rows: int, seed: int = SEED) -> np.ndarray:
    """Sorted row indices: all rows when there are at most ``max_rows``, else a seeded sample of
    ``max_rows`` that keeps each class's share."""
    if max_rows < 2:
        raise ValueError(f"the baseline needs at least 2 rows, max_rows is {max_rows}")
    rows = np.arange(len(labels))
    if len(rows) <= max_rows:
        return rows
    kept, _ = train_test_split(rows, train_size=max_rows, stratify=labels, random_state=seed)
    return np.sort(kept)


def model_matrix(preprocessor: Any, frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """``frame``'s feature columns through the candidate's fitted preprocessor (float64)."""
    return np.asarray(preprocessor.transform(feature_frame(frame, spec)), dtype=np.float64)


def max_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score cut-off with the best F1 (ties: the higher threshold)."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)[:-1]
    best = int(np.flatnonzero(f1 == f1.max())[-1])
    return float(thresholds[best])


def fit_logistic_regression(
    matrix: np.ndarray, labels: np.ndarray, max_iter: int = MAX_ITER
) -> tuple[LogisticRegression, int, bool]:
    """The fitted model, its lbfgs iterations, and whether it converged within ``max_iter``."""
    model = LogisticRegression(solver="lbfgs", max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the sentence instead
        model.fit(matrix, labels)
    iterations = int(np.max(model.n_iter_))
    return model, iterations, iterations < max_iter


def train_baseline(
    train_data: str,
    preprocessor: Any,
    spec: FeatureSpec,
    classes: BinaryLabels,
    *,
    max_rows: int = MAX_ROWS,
    seed: int = SEED,
) -> BaselineFit:
    """Read ``train_data``, sample it if large, transform it and fit the logistic regression."""
    frame = read_training_data(train_data)
    try:
        labels = classes.encode_frame(frame).astype(int)
        if len(np.unique(labels)) < 2:
            raise DataError(f"it holds a single class of label '{classes.column}'; a baseline needs both")
        kept = stratified_sample(labels, max_rows, seed)
        matrix = model_matrix(preprocessor, frame.iloc[kept], spec)
    except DataError as exc:
        raise DataError(f"train_data {train_data!r} cannot train the baseline: {exc}") from exc
    del frame
    model, iterations, converged = fit_logistic_regression(matrix, labels[kept])
    fitted_threshold = max_f1_threshold(labels[kept], model.predict_proba(matrix)[:, 1])
    log.info(
        "baseline: logistic regression on %d of %d training rows, %d iterations",
        len(kept),
        len(labels),
        iterations,
    )
    return BaselineFit(model, len(labels), len(kept), iterations, converged, fitted_threshold)


def score_baseline(
    fit: BaselineFit,
    holdout_matrix: np.ndarray,
    labels: np.ndarray,
    costs: ErrorCosts,
    target_precision: float = DEFAULT_TARGET_PRECISION,
) -> BaselineScores:
    """The baseline's holdout metrics at its own threshold (cost-optimal when costs are given)."""
    scores = fit.model.predict_proba(holdout_matrix)[:, 1].astype(np.float64)
    point = choose_operating_point(labels, scores, costs, fit.fitted_threshold, MAX_F1_RULE)
    report = classification_report(labels, scores, point.threshold, target_precision)
    if costs.enabled:
        report.metrics["expected_cost"] = expected_cost(
            np.asarray(labels).astype(int), scores, point.threshold, costs
        )
    return BaselineScores(
        LABEL, scores, report, point.source, fit.training_rows, fit.fitted_rows, fit.iterations, fit.converged
    )
