"""Fixtures of validate_data's component tests: a small generated data set (2,000 rows, 80/20)."""

from __future__ import annotations

import pytest

from kfp_cicd.data.synthetic import DatasetFiles, generate_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetFiles:
    return generate_dataset(tmp_path_factory.mktemp("validate-data"), rows=2000, seed=1)
