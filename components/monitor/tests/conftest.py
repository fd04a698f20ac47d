"""Fixtures of monitor's component tests: generated training data, a drifted production window, and a
champion registered in an MLflow SQLite store with its training data as the drift baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from component_testing import MODEL_NAME, quick_model
from mlflow import MlflowClient

from kfp_cicd.data.synthetic import DatasetFiles, DriftSpec, generate_dataset, generate_transactions
from kfp_cicd.registry.registration import register_model_version


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetFiles:
    return generate_dataset(tmp_path_factory.mktemp("monitor"), rows=2000, seed=1)


@pytest.fixture(scope="session")
def drifted_window(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A later day of production data: larger amounts, more online transactions."""
    path = tmp_path_factory.mktemp("window") / "day3.csv"
    generate_transactions(1000, seed=5, drift=DriftSpec.uniform(0.5, day=3)).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def model_dir(dataset: DatasetFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quick_model(pd.read_csv(dataset.train), tmp_path_factory.mktemp("monitor-model") / "model")


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def pipeline_job_id() -> str:
    """The id of the (monitoring) pipeline run whose training pipeline registered the champion."""
    return "monitoring-run-7"


@pytest.fixture
def champion(tracking_uri: str, model_dir: Path, dataset: DatasetFiles, pipeline_job_id: str) -> str:
    """The version serving as champion, tagged with its training data and the pipeline run that made it."""
    version = register_model_version(
        model_dir,
        tracking_uri=tracking_uri,
        model_name=MODEL_NAME,
        tags={"train_data": str(dataset.train), "pipeline_job_id": pipeline_job_id},
    ).version
    MlflowClient(tracking_uri=tracking_uri).set_registered_model_alias(MODEL_NAME, "champion", version)
    return version


@pytest.fixture
def drift_decision(tmp_path: Path) -> Path:
    """check_drift's decision.json for a window whose amounts drifted."""
    path = tmp_path / "decision.json"
    path.write_text(
        json.dumps(
            {
                "retrain": True,
                "trigger": "skew",
                "reason": "amount drifted: Jensen-Shannon 0.41 > 0.15",
                "model_name": MODEL_NAME,
                "champion_version": "1",
                "production_data": "day3.csv",
                "drifted_features": ["amount"],
                "features_compared": 23,
                "baseline": "training data",
                "anomaly_count": 0,
            }
        )
    )
    return path


@pytest.fixture
def drift_report(tmp_path: Path) -> Path:
    path = tmp_path / "drift_report.md"
    path.write_text("# Drift\n\n| feature | metric | value |\n|---|---|---|\n| amount | JSD | 0.41 |\n")
    return path
