"""The built-in network: a small MLP over preprocessed tabular features, emitting one logit."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class TabularMLP(nn.Module):
    """Feed-forward classifier: ``[Linear → ReLU → Dropout] * len(hidden_units) → Linear(1)``.

    It returns logits (not probabilities) so training can use ``BCEWithLogitsLoss`` with a
    positive-class weight; the packaged model applies the sigmoid.
    """

    def __init__(self, input_dim: int, hidden_units: Sequence[int] = (64, 32),
                 dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        for units in hidden_units:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features).squeeze(-1)
