"""train_model_pytorchjob through its Python function (``python_func``): a PyTorchJob created through
the real kubernetes client, its replica trained for real, the model copied back."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from component_testing import IMAGES, input_artifact, output_artifact
from fake_kubernetes_api import FakeKubernetesApiServer
from kfp.dsl import Artifact, Metrics, Model

from kfp_cicd.components.train_pytorchjob.component import build_component
from kfp_cicd.data.synthetic import LABEL_COLUMN, DatasetFiles


def test_the_job_trains_and_the_model_comes_back(
    cluster: FakeKubernetesApiServer,
    dataset: DatasetFiles,
    schema_dir: Path,
    tmp_path: Path,
    job_settings: dict[str, object],
) -> None:
    train = build_component(IMAGES.runtime).python_func
    model = output_artifact(Model, tmp_path / "model")
    metrics = output_artifact(Metrics, tmp_path / "metrics")

    train(
        train_data=str(dataset.train),
        schema=input_artifact(Artifact, schema_dir),
        model=model,
        metrics=metrics,
        job_name="component-unit",
        **job_settings,
    )

    assert model.metadata == {"framework": "mlflow.pyfunc", "pytorchjob": "ml/component-unit"}
    assert metrics.metadata["world_size"] == 1
    (created,) = cluster.created_bodies()
    assert created["kind"] == "PyTorchJob" and created["metadata"]["name"] == "component-unit"
    holdout = pd.read_csv(dataset.holdout).head(50)
    predictions = mlflow.pyfunc.load_model(model.path).predict(holdout.drop(columns=[LABEL_COLUMN]))
    assert predictions["probability"].between(0, 1).all()


def test_a_bad_node_selector_fails_before_anything_is_created(
    cluster: FakeKubernetesApiServer,
    dataset: DatasetFiles,
    schema_dir: Path,
    tmp_path: Path,
    job_settings: dict[str, object],
) -> None:
    train = build_component(IMAGES.runtime).python_func
    with pytest.raises(ValueError):
        train(
            train_data=str(dataset.train),
            schema=input_artifact(Artifact, schema_dir),
            model=output_artifact(Model, tmp_path / "model"),
            metrics=output_artifact(Metrics, tmp_path / "metrics"),
            node_selector_json="{not json",
            **job_settings,
        )
    assert cluster.created_bodies() == []
