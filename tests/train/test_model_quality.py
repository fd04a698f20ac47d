"""The training path on a real public data set against logistic regression (slow: real torchrun).

The goals the model-quality benchmark (``benchmarks/model_quality.py``) checks on four data sets,
here on one of them, mixed numeric and categorical (AER HMDA, 12 % positive), with its seed-0
split: ROC AUC within 0.01 of logistic regression's or better, log loss at most 1.1x its, ECE at
most 0.05 on the holdout, scored through the saved MLflow model.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import public_datasets
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from kfp_cicd.components.evaluate.metrics import expected_calibration_error
from kfp_cicd.components.train.training import TrainingConfig, train_classifier
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.labels import BinaryLabels
from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame

pytestmark = pytest.mark.slow


def test_a_real_data_set_is_ranked_like_logistic_regression_and_calibrated(tmp_path: Path) -> None:
    dataset = public_datasets.get("mortgage_hmda")
    if not dataset.installed():
        pytest.skip(f"{dataset.package} is not installed: {public_datasets.INSTALL_HINT}")
    frame = dataset.load()
    train, holdout = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame[dataset.label])
    features = [c for c in frame.columns if c != dataset.label]
    categorical = tuple(c for c in features if frame[c].dtype == object)
    spec = FeatureSpec(
        dataset.label,
        tuple(c for c in features if c not in categorical),
        categorical,
        BinaryLabels.infer(train[dataset.label], dataset.label),
    )
    y_train, y_holdout = spec.labels.encode_frame(train), spec.labels.encode_frame(holdout)
    baseline = make_pipeline(build_preprocessor(spec), LogisticRegression(max_iter=5000))
    baseline.fit(feature_frame(train, spec), y_train)
    reference = baseline.predict_proba(feature_frame(holdout, spec))[:, 1]

    train.to_csv(tmp_path / "train.csv", index=False)
    result = train_classifier(str(tmp_path / "train.csv"), spec, tmp_path / "model", TrainingConfig())
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    scores = model.predict(holdout.drop(columns=[dataset.label]))["probability"].to_numpy()

    assert roc_auc_score(y_holdout, scores) >= roc_auc_score(y_holdout, reference) - 0.01
    assert log_loss(y_holdout, scores) <= 1.1 * log_loss(y_holdout, reference)
    assert expected_calibration_error(y_holdout, scores) <= 0.05
    assert result.metrics["stopped_early"] > 0, "early stopping ended training before the epoch ceiling"
    config = json.loads((tmp_path / "model" / "artifacts" / "config.json").read_text())
    predicted_rate = float(np.mean(scores >= config["decision_threshold"]))
    assert 0.03 < predicted_rate < 0.3, "the max-F1 threshold flags a plausible share of applications"
