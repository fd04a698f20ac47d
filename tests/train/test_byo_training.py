"""Bring your own training code: the example module runs through the same plumbing (real torchrun)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from kfp_cicd.components.train.contract import EntryPointError, load_entry_point
from kfp_cicd.components.train.training import TrainingConfig, train_classifier

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "byo_training"


@pytest.fixture
def example_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLE_DIR))  # the torchrun workers import it too


def test_user_module_trains_and_is_packaged_as_the_usual_model(
    example_on_path: None, tmp_path: Path, small_dataset, feature_spec
) -> None:
    config = TrainingConfig(
        epochs=3,
        batch_size=256,
        num_processes=2,
        entry_point="fraud_resnet",
        entry_point_params=json.dumps({"width": 24, "blocks": 1}),
    )
    result = train_classifier(str(small_dataset.train), feature_spec, tmp_path / "model", config)
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    assert model.metadata.metadata["entry_point"] == "fraud_resnet"
    holdout = pd.read_csv(small_dataset.holdout)
    scores = model.predict(holdout.drop(columns=["is_fraud"]))["probability"]
    assert roc_auc_score(holdout["is_fraud"], scores) > 0.7
    history = json.loads((tmp_path / "model" / "training_history.json").read_text())
    members = sorted({h["member"] for h in history})
    assert members == [0, 1, 2, 3, 4], "4,800 training rows are cross-fitted: one network per fold"
    for member in members:
        assert [h["epoch"] for h in history if h["member"] == member] == [1, 2, 3]
    assert all(h["rows_per_second"] > 0 for h in history)
    assert result.metrics["world_size"] == 2
    config = json.loads((tmp_path / "model" / "artifacts" / "config.json").read_text())
    assert config["calibration"]["method"] == "platt", "a module that ignores validation is calibrated too"


def test_a_module_that_breaks_the_contract_is_refused_naming_what_is_missing(
    tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "half_done.py").write_text("def train(context, network):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EntryPointError, match="lacks build_network"):
        load_entry_point("half_done")
    with pytest.raises(EntryPointError, match="'no_such_module' cannot be imported"):
        load_entry_point("no_such_module")
    sys.modules.pop("half_done", None)
