"""train_model through its Python function (``python_func``): a real torchrun run on 1,600 rows."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from component_testing import IMAGES, input_artifact, output_artifact
from kfp.dsl import Artifact, Metrics, Model

from kfp_cicd.components.train.component import build_component
from kfp_cicd.data.synthetic import LABEL_COLUMN, DatasetFiles


def test_trains_a_model_that_scores_the_holdout(
    dataset: DatasetFiles, schema_dir: Path, tmp_path: Path, quick_settings: dict[str, int]
) -> None:
    train_model = build_component(IMAGES.runtime).python_func
    model = output_artifact(Model, tmp_path / "model")
    metrics = output_artifact(Metrics, tmp_path / "metrics")

    train_model(
        train_data=str(dataset.train),
        schema=input_artifact(Artifact, schema_dir),
        model=model,
        metrics=metrics,
        **quick_settings,
    )

    assert model.metadata["framework"] == "mlflow.pyfunc"
    assert metrics.metadata["world_size"] == 1 and metrics.metadata["train_rows"] == 1600
    holdout = pd.read_csv(dataset.holdout)
    predictions = mlflow.pyfunc.load_model(model.path).predict(holdout.drop(columns=[LABEL_COLUMN]))
    assert len(predictions) == len(holdout)
    assert predictions["probability"].between(0, 1).all()
    history = json.loads((Path(model.path) / "training_history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2]


def test_a_schema_without_features_json_is_refused(
    dataset: DatasetFiles, tmp_path: Path, quick_settings: dict[str, int]
) -> None:
    train_model = build_component(IMAGES.runtime).python_func
    (tmp_path / "empty-schema").mkdir()
    with pytest.raises(Exception, match=r"features\.json"):
        train_model(
            train_data=str(dataset.train),
            schema=input_artifact(Artifact, tmp_path / "empty-schema"),
            model=output_artifact(Model, tmp_path / "model"),
            metrics=output_artifact(Metrics, tmp_path / "metrics"),
            **quick_settings,
        )
