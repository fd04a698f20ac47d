"""Fixtures of train's component tests: 2,000 generated rows and the schema directory training reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from component_testing import write_schema_dir

from kfp_cicd.data.synthetic import DatasetFiles, generate_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetFiles:
    return generate_dataset(tmp_path_factory.mktemp("train"), rows=2000, seed=1)


@pytest.fixture(scope="session")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_schema_dir(tmp_path_factory.mktemp("train-schema") / "schema")


@pytest.fixture(scope="session")
def quick_settings() -> dict[str, int]:
    """Small and quick: one CPU worker, two epochs, one validation split."""
    return {"epochs": 2, "batch_size": 256, "num_processes": 1, "validation_folds": 1, "seed": 1}
