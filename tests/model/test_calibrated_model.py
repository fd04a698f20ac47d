"""The packaged model applies its calibration to every probability; models without one score as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.integrity import write_checksums
from kfp_cicd.model.network import LogitAverage, TabularMLP
from kfp_cicd.model.packaging import save_classifier, update_model_config
from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame


@pytest.fixture(scope="module")
def rows() -> dict:
    frame = generate_transactions(200, seed=21).drop(columns=[LABEL_COLUMN])
    return {"frame": frame}


def copy_model(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def scores(model_dir: Path, frame) -> tuple[np.ndarray, np.ndarray]:
    predicted = mlflow.pyfunc.load_model(str(model_dir)).predict(frame)
    return predicted["probability"].to_numpy(), predicted["prediction"].to_numpy()


def test_platt_calibration_is_applied_to_mlflow_and_column_scoring(
    untrained_model_dir: Path, tmp_path: Path, rows: dict, feature_spec: FeatureSpec
) -> None:
    frame = rows["frame"]
    plain, _ = scores(untrained_model_dir, frame)
    logits = np.log(plain) - np.log1p(-plain)
    model_dir = copy_model(untrained_model_dir, tmp_path)
    update_model_config(
        model_dir,
        calibration={"method": "platt", "slope": 2.5, "intercept": -1.5},
        decision_threshold=0.2,
        threshold_rule="max F1 on the validation split (9 rows)",
    )
    calibrated, prediction = scores(model_dir, frame)
    expected = 1 / (1 + np.exp(-(2.5 * logits - 1.5)))
    np.testing.assert_allclose(calibrated, expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(calibrated, plain, atol=1e-3), "the calibration must change the probabilities"
    np.testing.assert_array_equal(prediction, (calibrated >= 0.2).astype(int))
    served = mlflow.pyfunc.load_model(str(model_dir)).unwrap_python_model()
    columns = {name: frame[name].tolist() for name in feature_spec.columns}
    probability, _ = served.score_columns(columns)  # what the KServe predictor calls
    np.testing.assert_array_equal(probability, calibrated)


def test_a_model_config_without_calibration_scores_as_before(
    untrained_model_dir: Path, tmp_path: Path, rows: dict
) -> None:
    """Models registered before calibration existed have no ``calibration``/``threshold_rule`` fields."""
    frame = rows["frame"]
    model_dir = copy_model(untrained_model_dir, tmp_path)
    config_path = model_dir / "artifacts" / "config.json"
    config = json.loads(config_path.read_text())
    assert config["calibration"] == {"method": "none"}, "save_classifier without a calibration: identity"
    old = {k: v for k, v in config.items() if k not in ("calibration", "threshold_rule")}
    config_path.write_text(json.dumps(old, indent=2))
    write_checksums(model_dir)
    plain, _ = scores(untrained_model_dir, frame)
    before, prediction = scores(model_dir, frame)
    np.testing.assert_array_equal(before, plain)
    np.testing.assert_array_equal(prediction, (plain >= 0.5).astype(int))
    updated = update_model_config(model_dir, decision_threshold=0.3, threshold_rule="cost-based, evaluation")
    assert updated["threshold_rule"] == "cost-based, evaluation", "an old model may gain the rule field"


def test_an_unknown_calibration_method_is_refused_at_load(untrained_model_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_model(untrained_model_dir, tmp_path)
    update_model_config(model_dir, calibration={"method": "isotonic"})
    with pytest.raises(Exception, match="calibration method 'isotonic'"):
        mlflow.pyfunc.load_model(str(model_dir))


def test_an_ensemble_of_networks_is_packaged_as_the_mean_of_their_logits(
    tmp_path: Path, feature_spec: FeatureSpec
) -> None:
    features = feature_frame(generate_transactions(500, seed=3), feature_spec)
    preprocessor = build_preprocessor(feature_spec).fit(features)
    matrix = np.asarray(preprocessor.transform(features), dtype=np.float32)
    torch.manual_seed(0)
    members = [TabularMLP(matrix.shape[1], (8,)).eval() for _ in range(3)]
    with torch.no_grad():
        member_logits = np.stack([m(torch.from_numpy(matrix)).numpy() for m in members])
    save_classifier(
        tmp_path / "model",
        preprocessor=preprocessor,
        network=LogitAverage(members),
        input_dim=matrix.shape[1],
        spec=feature_spec,
        example=features.head(5),
        calibration={"method": "platt", "slope": 0.5, "intercept": 0.25},
    )
    probability, _ = scores(tmp_path / "model", features)
    expected = 1 / (1 + np.exp(-(0.5 * member_logits.mean(axis=0) + 0.25)))
    np.testing.assert_allclose(probability, expected, rtol=1e-5, atol=1e-7)
    config = json.loads((tmp_path / "model" / "artifacts" / "config.json").read_text())
    assert config["threshold_rule"] == "decision_threshold=0.5 given"
    with pytest.raises(ValueError, match="at least one member"):
        LogitAverage([])
