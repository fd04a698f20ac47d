"""The built-in network: a small MLP over preprocessed tabular features, emitting one logit.

A wide-and-deep variant (a linear term on the inputs beside the MLP) was measured on four public
data sets and did not match logistic regression any better than the plain MLP, so it is not here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class TabularMLP(nn.Module):
    """Feed-forward classifier: ``[Linear → ReLU → Dropout] * len(hidden_units) → Linear(1)``.

    It returns logits (not probabilities): training uses ``BCEWithLogitsLoss`` and the packaged model
    applies the (calibrated) sigmoid.
    """

    def __init__(self, input_dim: int, hidden_units: Sequence[int] = (64, 32), dropout: float = 0.1) -> None:
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


class LogitAverage(nn.Module):
    """Several networks as one: the mean of their logits (a cross-fitted ensemble).

    Each member maps ``[batch, input_dim]`` to ``[batch]`` logits; averaging logits (not
    probabilities) keeps the output a logit the packaged model's calibration applies to, and
    exports with ``torch.export`` like a single network.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("LogitAverage needs at least one member network")
        self.members = nn.ModuleList(members)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(features) for member in self.members]).mean(dim=0)
