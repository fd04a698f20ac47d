"""Fixtures of deploy's component tests: a real model registered in an MLflow SQLite store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from component_testing import MODEL_NAME, quick_model

from kfp_cicd.data.synthetic import DatasetFiles, generate_dataset
from kfp_cicd.registry.registration import register_model_version


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetFiles:
    return generate_dataset(tmp_path_factory.mktemp("deploy"), rows=2000, seed=1)


@pytest.fixture(scope="session")
def model_dir(dataset: DatasetFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quick_model(pd.read_csv(dataset.train), tmp_path_factory.mktemp("deploy-model") / "model")


@pytest.fixture
def registered(model_dir: Path, tmp_path: Path) -> tuple[str, str]:
    """(tracking URI, version): the model registered (alias candidate) in a fresh SQLite store."""
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    version = register_model_version(model_dir, tracking_uri=tracking_uri, model_name=MODEL_NAME).version
    return tracking_uri, version
