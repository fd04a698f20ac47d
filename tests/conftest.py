"""Shared fixtures: small generated data, a model trained for real with torchrun, paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfp_cicd.data.synthetic import (
    CATEGORICAL_FEATURES,
    LABEL_COLUMN,
    NUMERIC_FEATURES,
    DatasetFiles,
    generate_dataset,
)
from kfp_cicd.model.features import FeatureSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout (CRDs, protocol specs); tests skip where it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared is not present beside this checkout")
    return SHARED_DIR


@pytest.fixture(scope="session")
def feature_spec() -> FeatureSpec:
    return FeatureSpec(LABEL_COLUMN, NUMERIC_FEATURES, CATEGORICAL_FEATURES)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetFiles:
    """6,000 generated rows split 80/20 into CSV files."""
    return generate_dataset(tmp_path_factory.mktemp("data"), rows=6_000, seed=7)


@pytest.fixture(scope="session")
def trained_model_dir(
    tmp_path_factory: pytest.TempPathFactory, small_dataset: DatasetFiles, feature_spec: FeatureSpec
) -> Path:
    """An MLflow pyfunc model trained by two real torchrun workers (gloo) for a few epochs."""
    from kfp_cicd.components.train.training import TrainingConfig, train_classifier

    model_dir = tmp_path_factory.mktemp("model") / "model"
    train_classifier(
        str(small_dataset.train), feature_spec, model_dir, TrainingConfig(epochs=4, num_processes=2, seed=1)
    )
    return model_dir


@pytest.fixture(scope="session")
def untrained_model_dir(tmp_path_factory: pytest.TempPathFactory, feature_spec: FeatureSpec) -> Path:
    """A real model directory built in-process in seconds: fitted preprocessor + untrained MLP.

    For tests of serving and deployment, where the predictions' quality does not matter.
    """
    import torch

    from kfp_cicd.data.synthetic import generate_transactions
    from kfp_cicd.model.network import TabularMLP
    from kfp_cicd.model.packaging import save_classifier, training_numeric_ranges
    from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame

    features = feature_frame(generate_transactions(2000, seed=11), feature_spec)
    preprocessor = build_preprocessor(feature_spec).fit(features)
    input_dim = preprocessor.transform(features.head(2)).shape[1]
    torch.manual_seed(1)
    network = TabularMLP(input_dim, hidden_units=(16,))
    path = tmp_path_factory.mktemp("untrained-model") / "model"
    return save_classifier(
        path,
        preprocessor=preprocessor,
        network=network,
        input_dim=input_dim,
        spec=feature_spec,
        example=features.head(5),
        numeric_ranges=training_numeric_ranges(features, feature_spec),
    )
