"""Fixtures of register's component tests: a real model, the gate's approval, an MLflow SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from component_testing import quick_model

from kfp_cicd.data.synthetic import DatasetFiles, generate_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetFiles:
    return generate_dataset(tmp_path_factory.mktemp("register"), rows=2000, seed=1)


@pytest.fixture(scope="session")
def model_dir(dataset: DatasetFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quick_model(pd.read_csv(dataset.train), tmp_path_factory.mktemp("register-model") / "model")


@pytest.fixture
def approval(tmp_path: Path) -> Path:
    """The evaluation gate's decision as evaluate_model writes it, approved."""
    path = tmp_path / "decision.json"
    path.write_text(
        json.dumps({"approved": True, "reasons": ["roc_auc 0.81 >= 0.6"], "notes": [], "checks": []})
    )
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
