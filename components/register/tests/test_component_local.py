"""register_model alone under kfp.local: model, metrics and decision imported; MLflow on SQLite."""

from __future__ import annotations

from pathlib import Path

from component_testing import IMAGES, MODEL_NAME, run_with_imported_artifacts
from kfp.dsl import Artifact, Metrics, Model
from mlflow import MlflowClient

from kfp_cicd.components.register.component import build_component
from kfp_cicd.data.synthetic import DatasetFiles


def test_the_task_registers_a_version_and_returns_where_it_is(
    dataset: DatasetFiles, model_dir: Path, approval: Path, tracking_uri: str, tmp_path: Path
) -> None:
    outputs = run_with_imported_artifacts(
        build_component(IMAGES.runtime),
        tmp_path / "root",
        {
            "model": (Model, model_dir, {}),
            "evaluation_metrics": (Metrics, model_dir, {"roc_auc": 0.8}),
            "decision": (Artifact, approval, {}),
        },
        tracking_uri=tracking_uri,
        model_name=MODEL_NAME,
        data_fingerprint="sha256:abc",
        train_data=str(dataset.train),
    )

    assert outputs.parameters["version"] == "1"
    assert outputs.parameters["model_uri"] == f"models:/{MODEL_NAME}/1"
    candidate = MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(MODEL_NAME, "candidate")
    assert str(candidate.version) == "1" and candidate.tags["train_data"] == str(dataset.train)
