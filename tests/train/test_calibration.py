"""Platt scaling and the F1 threshold rule (``components/train/calibration.py``), on real data."""

from __future__ import annotations

import numpy as np
import public_datasets
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score

from kfp_cicd.components.evaluate.metrics import expected_calibration_error
from kfp_cicd.components.train.calibration import (
    Calibration,
    choose_threshold,
    fit_platt,
    max_f1_threshold,
)
from kfp_cicd.data.splits import stratified_folds
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.labels import BinaryLabels
from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame


@pytest.fixture(scope="module")
def credit_default_logits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Logits of a class-weighted model on ISLP Default (3 % positive): badly calibrated on purpose.

    Weighting the rare class, as training did before calibration existed, inflates its
    probabilities; the logits' ranking stays good. Folds: 0-2 fit, 3 validation, 4 holdout.
    """
    dataset = public_datasets.get("credit_default")
    if not dataset.installed():
        pytest.skip(f"{dataset.package} is not installed: {public_datasets.INSTALL_HINT}")
    frame = dataset.load()
    spec = FeatureSpec(
        dataset.label,
        ("balance", "income"),
        ("student",),
        BinaryLabels.infer(frame[dataset.label], dataset.label),
    )
    labels = spec.labels.encode_frame(frame)
    folds = stratified_folds(labels, 5, seed=0)
    preprocessor = build_preprocessor(spec).fit(feature_frame(frame[folds <= 2], spec))
    matrix = preprocessor.transform(feature_frame(frame, spec))
    model = LogisticRegression(class_weight="balanced", max_iter=1000).fit(
        matrix[folds <= 2], labels[folds <= 2]
    )
    logits = model.decision_function(matrix)
    return {
        "validation": (logits[folds == 3], labels[folds == 3]),
        "holdout": (logits[folds == 4], labels[folds == 4]),
    }


def test_platt_scaling_calibrates_a_real_holdout(credit_default_logits) -> None:
    validation_logits, validation_labels = credit_default_logits["validation"]
    holdout_logits, holdout_labels = credit_default_logits["holdout"]
    raw = Calibration().probabilities(holdout_logits)
    assert expected_calibration_error(holdout_labels, raw) > 0.15, "the weighted model is miscalibrated"
    calibration = fit_platt(validation_logits, validation_labels)
    assert calibration.method == "platt" and calibration.slope > 0 and calibration.intercept < -1
    calibrated = calibration.probabilities(holdout_logits)
    assert expected_calibration_error(holdout_labels, calibrated) <= 0.05
    assert roc_auc_score(holdout_labels, calibrated) == pytest.approx(roc_auc_score(holdout_labels, raw)), (
        "calibration is monotone: the ranking must not change"
    )
    assert calibrated.mean() == pytest.approx(holdout_labels.mean(), abs=0.01)


@pytest.mark.parametrize(
    ("logits", "labels", "named"),
    [
        (np.linspace(-2, 2, 50), np.zeros(50), "0 positive and 50 negative rows"),
        (np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 0]), "1 positive and 3 negative rows"),
        (np.array([np.inf, 0.0, 1.0, -1.0]), np.array([1, 0, 1, 0]), "non-finite logits"),
        (np.linspace(-3, 3, 200), (np.linspace(-3, 3, 200) < 0).astype(float), "no better than chance"),
    ],
)
def test_unusable_validation_rows_leave_the_probabilities_alone_saying_why(logits, labels, named) -> None:
    calibration = fit_platt(logits, labels)
    assert (calibration.method, calibration.slope, calibration.intercept) == ("none", 1.0, 0.0)
    assert named in calibration.note
    assert calibration.to_config()["method"] == "none"


def test_calibrated_probabilities_are_finite_for_extreme_logits() -> None:
    probabilities = Calibration("platt", 2.0, -1.0).probabilities(np.array([-1e4, 0.0, 1e4]))
    assert np.isfinite(probabilities).all()
    assert probabilities.tolist() == pytest.approx([0.0, 1 / (1 + np.exp(1.0)), 1.0])


def test_the_f1_threshold_is_the_best_one_a_brute_force_search_finds(credit_default_logits) -> None:
    logits, labels = credit_default_logits["validation"]
    probabilities = fit_platt(logits, labels).probabilities(logits)
    threshold, best_f1 = max_f1_threshold(probabilities, labels)
    assert best_f1 == pytest.approx(f1_score(labels, probabilities >= threshold))
    brute_force = max(f1_score(labels, probabilities >= t) for t in np.unique(probabilities))
    assert best_f1 == pytest.approx(brute_force)
    assert 0.05 < threshold < 0.95, "a rare class's best F1 is not at an extreme threshold"


def test_the_f1_threshold_lies_between_the_chosen_and_the_next_lower_score() -> None:
    threshold, f1 = max_f1_threshold(np.array([0.9, 0.8, 0.8, 0.1]), np.array([1, 1, 0, 0]))
    assert (threshold, f1) == pytest.approx((0.45, 0.8))
    with pytest.raises(ValueError, match="at least one positive"):
        max_f1_threshold(np.array([0.2, 0.4]), np.array([0, 0]))


def test_the_threshold_rule_says_which_rule_chose_it() -> None:
    probabilities, labels = np.array([0.9, 0.7, 0.2, 0.1]), np.array([1, 1, 0, 0])
    assert choose_threshold(0.3, probabilities, labels, "4 rows") == (0.3, "decision_threshold=0.3 given")
    threshold, rule = choose_threshold(-1.0, probabilities, labels, "the validation split (4 rows)")
    assert threshold == pytest.approx(0.45)
    assert rule == "max F1 (1.000) of the calibrated probabilities on the validation split (4 rows)"
    assert choose_threshold(-1.0, None, None, "-") == (
        0.5,
        "0.5: no validation rows with positives to choose a threshold on",
    )
