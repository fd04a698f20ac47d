"""Fixtures of evaluate's component tests: generated data and a real candidate trained in seconds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from component_testing import quick_model

from kfp_cicd.data.synthetic import DatasetFiles, generate_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetFiles:
    """5,000 rows (about 100 positives) split 80/20."""
    return generate_dataset(tmp_path_factory.mktemp("evaluate"), rows=5000, seed=1)


@pytest.fixture(scope="session")
def candidate(dataset: DatasetFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A packaged classifier trained in-process on the training split."""
    return quick_model(pd.read_csv(dataset.train), tmp_path_factory.mktemp("candidate") / "model", epochs=60)


@pytest.fixture
def lenient_gate() -> dict[str, object]:
    """Checks a small quick model passes: ROC AUC above chance, no calibration or baseline check."""
    return {"min_roc_auc": 0.55, "max_ece": -1.0, "baseline_metrics": ""}
