"""Evaluation fixtures: small real models trained in-process in seconds (one thread, fixed seed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.network import TabularMLP
from kfp_cicd.model.packaging import save_classifier
from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame

QuickTrainer = Callable[..., Path]


def _fit_network(
    matrix: np.ndarray, labels: np.ndarray, epochs: int, seed: int, class_weighted: bool
) -> TabularMLP:
    features = torch.from_numpy(matrix)
    targets = torch.from_numpy(labels.astype(np.float32))
    torch.manual_seed(seed)
    network = TabularMLP(matrix.shape[1], hidden_units=(32,), dropout=0.0)
    optimiser = torch.optim.Adam(network.parameters(), lr=0.01)
    # Weighted positives (negatives / positives) skew the probabilities upwards; unweighted, a model's
    # probabilities stay calibrated enough to compare log loss with a logistic regression.
    weight = (1 - labels.mean()) / labels.mean() if class_weighted else 1.0
    loss = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(features), 512):
            batch = order[start : start + 512]
            optimiser.zero_grad()
            loss(network(features[batch]), targets[batch]).backward()
            optimiser.step()
    return network.eval()


@pytest.fixture(scope="session")
def quick_trainer(tmp_path_factory: pytest.TempPathFactory, feature_spec: FeatureSpec) -> QuickTrainer:
    """``train(frame, name, epochs=30, seed=0, class_weighted=True, spec=None) -> model dir``: a real
    packaged model in seconds (``spec``: another label or classes than the synthetic data's)."""

    def train(
        frame: pd.DataFrame,
        name: str,
        epochs: int = 30,
        seed: int = 0,
        class_weighted: bool = True,
        spec: FeatureSpec | None = None,
    ) -> Path:
        spec = spec or feature_spec
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small matrices: one thread is faster than sharing two busy cores
        try:
            features = feature_frame(frame, spec)
            preprocessor = build_preprocessor(spec).fit(features)
            matrix = np.asarray(preprocessor.transform(features), dtype=np.float32)
            network = _fit_network(matrix, spec.labels.encode_frame(frame), epochs, seed, class_weighted)
        finally:
            torch.set_num_threads(threads)
        path = tmp_path_factory.mktemp(f"quick-{name}") / "model"
        return save_classifier(
            path,
            preprocessor=preprocessor,
            network=network,
            input_dim=matrix.shape[1],
            spec=spec,
            example=features.head(5),
        )

    return train
