"""train_model alone under kfp.local: the schema imported, torchrun in the task's subprocess."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from component_testing import IMAGES, run_with_imported_artifacts
from kfp.dsl import Artifact

from kfp_cicd.components.train.component import build_component
from kfp_cicd.data.synthetic import LABEL_COLUMN, DatasetFiles


def test_the_task_writes_a_loadable_model(
    dataset: DatasetFiles, schema_dir: Path, tmp_path: Path, quick_settings: dict[str, int]
) -> None:
    outputs = run_with_imported_artifacts(
        build_component(IMAGES.runtime),
        tmp_path / "root",
        {"schema": (Artifact, schema_dir, {})},
        train_data=str(dataset.train),
        **quick_settings,
    )

    assert outputs.artifact_metadata["model"]["framework"] == "mlflow.pyfunc"
    assert outputs.artifact_metadata["metrics"]["epochs"] == 2
    holdout = pd.read_csv(dataset.holdout).head(50)
    predictions = mlflow.pyfunc.load_model(str(outputs.artifact_paths["model"])).predict(
        holdout.drop(columns=[LABEL_COLUMN])
    )
    assert predictions["probability"].between(0, 1).all()
