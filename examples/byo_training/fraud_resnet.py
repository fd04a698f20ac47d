"""An example training module for ``train_model(entry_point="fraud_resnet")``.

It follows the contract in ``kfp_cicd/components/train/contract.py``: two functions, the launch
plumbing does the rest (rank/world discovery, NCCL/gloo, process group, checkpoint directory, progress
lines, packaging as the MLflow pyfunc model the rest of the pipeline expects).

The network is a small residual MLP with LayerNorm; training uses SGD with Nesterov momentum and
label smoothing, all choices the built-in module does not make, to show what is yours to change.
Extra hyper-parameters arrive through ``entry_point_params`` (JSON) and are read from ``params``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from kfp_cicd.components.train.contract import TrainingContext


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualMLP(nn.Module):
    """``[batch, input_dim]`` float32 → ``[batch]`` logits, as the contract requires."""

    def __init__(self, input_dim: int, width: int, blocks: int) -> None:
        super().__init__()
        self.stem = nn.Linear(input_dim, width)
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)))
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x))).squeeze(-1)


def build_network(input_dim: int, params: Mapping[str, Any]) -> nn.Module:
    """Called on every rank and again by the parent to load the trained weights: deterministic."""
    return ResidualMLP(input_dim, width=int(params.get("width", 32)), blocks=int(params.get("blocks", 2)))


def train(context: TrainingContext, network: nn.Module) -> None:
    """Train ``network`` in place; every rank runs this."""
    features, labels = context.load_tensors()
    x, y = features.to(context.device), labels.to(context.device)
    smoothing = float(context.params.get("label_smoothing", 0.05))
    batch_size = int(context.params["batch_size"])
    model = context.wrap(network)  # DistributedDataParallel when world_size > 1
    optimizer = torch.optim.SGD(
        model.parameters(), lr=float(context.params.get("sgd_lr", 0.05)), momentum=0.9, nesterov=True
    )
    loss_fn = nn.BCEWithLogitsLoss()
    start = context.resume(network, optimizer)  # 0, or the epoch after the latest checkpoint
    sampler = context.sampler(len(y))
    for epoch in range(start, context.epochs):
        started = time.perf_counter()
        indices = sampler.indices(epoch).to(context.device)
        loss_sum = torch.zeros((), device=context.device)
        for begin in range(0, len(indices), batch_size):
            batch = indices[begin : begin + batch_size]
            target = y[batch] * (1 - smoothing) + 0.5 * smoothing
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(context.device.type, dtype=torch.bfloat16, enabled=context.bf16):
                logits = model(x[batch])
            loss = loss_fn(logits.float(), target)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(batch)
        totals = torch.stack([loss_sum, torch.tensor(float(len(indices)), device=context.device)])
        dist.all_reduce(totals)
        context.log_epoch(
            epoch + 1,
            float(totals[0] / totals[1]),
            rows=int(totals[1]),
            seconds=time.perf_counter() - started,
        )
        context.save_checkpoint(epoch, network, optimizer)  # every rank calls it
