"""Calibrate the network's probabilities and choose the decision threshold on the validation rows.

A network trained to minimise cross-entropy with early stopping is close to calibrated, but not
reliably so (dropout, the epoch early stopping picks, a smaller effective data set): its log loss
and calibration error drift from a logistic regression's on the same data. **Platt scaling** fixes
that with two numbers fitted on rows the network never trained on: ``p = sigmoid(slope * z +
intercept)`` on the network's logit ``z``. Being monotone it leaves the ranking (ROC AUC, PR AUC)
unchanged; with two parameters it cannot overfit a validation split of a few hundred rows the way
isotonic regression would. The packaged model applies it to every probability it serves.

The **decision threshold**, when not given, is the one that maximises F1 of the calibrated
probabilities on the same rows: a sensible default operating point for a rare positive class, which
the evaluation step may replace with a cost-based one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

log = logging.getLogger(__name__)
# Nearly unregularised (Platt's fit is a maximum-likelihood fit), but finite: with perfectly
# separated validation rows an unregularised slope would run off to infinity.
PLATT_C = 1e4
MIN_ROWS_PER_CLASS = 2
THRESHOLD_FLOOR, THRESHOLD_CEILING = 1e-6, 1 - 1e-6


@dataclass(frozen=True)
class Calibration:
    """``p = sigmoid(slope * logit + intercept)``; method "none": the plain sigmoid."""

    method: str = "none"
    slope: float = 1.0
    intercept: float = 0.0
    note: str = ""

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (float64) of raw network logits."""
        z = self.slope * np.asarray(logits, dtype=np.float64) + self.intercept
        return np.exp(-np.logaddexp(0.0, -z))  # sigmoid without overflow warnings

    def to_config(self) -> dict[str, object]:
        """The ``calibration`` entry of the model's ``config.json`` (read by ``pyfunc_model.py``)."""
        return {
            "method": self.method,
            "slope": self.slope,
            "intercept": self.intercept,
            **({"note": self.note} if self.note else {}),
        }


IDENTITY = Calibration()


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    """Platt scaling fitted on validation ``logits`` and their 0/1 ``labels``; the identity if unusable.

    Falls back to the identity (with a ``note`` saying why) when a class has fewer than two rows,
    a logit is not finite, the fit fails, or the fitted slope is not positive (a network whose
    validation ranking is inverted is not something calibration should hide).
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if len(z) != len(y):
        raise ValueError(f"{len(z)} logits but {len(y)} labels")
    positives = int(y.sum())
    if min(positives, len(y) - positives) < MIN_ROWS_PER_CLASS:
        return _identity(
            f"the validation rows hold {positives} positive and {len(y) - positives} "
            f"negative rows; Platt scaling needs {MIN_ROWS_PER_CLASS} of each"
        )
    if not np.isfinite(z).all():
        return _identity("the network produced non-finite logits on the validation rows")
    try:
        fitted = LogisticRegression(C=PLATT_C, max_iter=1000).fit(z.reshape(-1, 1), y.astype(int))
    except (ValueError, ArithmeticError) as error:
        return _identity(f"the Platt fit failed: {error}")
    slope, intercept = float(fitted.coef_[0, 0]), float(fitted.intercept_[0])
    if not (math.isfinite(slope) and math.isfinite(intercept)) or slope <= 0:
        return _identity(
            f"the Platt fit gave slope {slope:.4g}: the network ranks the validation rows "
            "no better than chance"
        )
    return Calibration("platt", slope, intercept)


def _identity(reason: str) -> Calibration:
    log.warning("probabilities left uncalibrated: %s", reason)
    return Calibration(note=reason)


def max_f1_threshold(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The threshold (predict positive when ``p >= threshold``) with the best F1, and that F1.

    Candidates are the distinct probabilities; the threshold returned lies halfway between the
    chosen one and the next lower one, so a row scored a hair below the chosen probability
    is not flipped by float noise. Refuses labels without a positive row (F1 is then undefined).
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    positives = y.sum()
    if positives == 0:
        raise ValueError("F1 needs at least one positive row")
    order = np.argsort(-p, kind="stable")
    ranked, hits = p[order], y[order]
    true_positives = np.cumsum(hits)
    predicted = np.arange(1, len(p) + 1)
    last_of_value = np.append(ranked[1:] != ranked[:-1], True)  # F1 only where a threshold can cut
    f1 = np.where(last_of_value, 2 * true_positives / (predicted + positives), -1.0)
    best = int(np.argmax(f1))
    below = ranked[best + 1] if best + 1 < len(ranked) else 0.0
    threshold = (ranked[best] + below) / 2
    return float(np.clip(threshold, THRESHOLD_FLOOR, THRESHOLD_CEILING)), float(f1[best])


def choose_threshold(
    given: float, probabilities: np.ndarray | None, labels: np.ndarray | None, where: str
) -> tuple[float, str]:
    """``(threshold, rule)``: ``given`` when in (0, 1), else max F1 on the validation rows.

    ``where`` describes the validation rows for the rule sentence (e.g. "1,234 validation rows").
    Without validation rows (or positives among them) an automatic threshold falls back to 0.5.
    """
    if 0 < given < 1:
        return float(given), f"decision_threshold={given:g} given"
    if probabilities is None or labels is None or len(labels) == 0 or not np.asarray(labels).any():
        return 0.5, "0.5: no validation rows with positives to choose a threshold on"
    threshold, f1 = max_f1_threshold(probabilities, labels)
    return threshold, f"max F1 ({f1:.3f}) of the calibrated probabilities on {where}"
