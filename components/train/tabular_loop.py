"""The built-in training module: a tabular MLP trained with DDP (follows :mod:`contract`).

Data arrive pre-tensorised. On GPU the whole data set is moved to the device when it fits in half
of the free memory (batches are then gathered on the device and never wait on Python or PCIe);
otherwise rows stay in pinned host memory and each batch is copied asynchronously. bf16 autocast on
GPUs that support it. The rare positive class is weighted in ``BCEWithLogitsLoss``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from kfp_cicd.components.train.contract import TrainingContext
from kfp_cicd.components.train.fault_injection import kill_hook
from kfp_cicd.model.network import TabularMLP


@dataclass(frozen=True)
class TabularParams:
    """The built-in module's hyper-parameters (``context.params``)."""

    epochs: int
    batch_size: int
    learning_rate: float
    hidden_units: tuple[int, ...]
    dropout: float
    weight_decay: float
    seed: int

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TabularParams:
        return cls(epochs=int(params["epochs"]), batch_size=int(params["batch_size"]),
                   learning_rate=float(params["learning_rate"]),
                   hidden_units=tuple(int(u) for u in params["hidden_units"]),
                   dropout=float(params["dropout"]), weight_decay=float(params["weight_decay"]),
                   seed=int(params["seed"]))


def build_network(input_dim: int, params: Mapping[str, Any]) -> torch.nn.Module:
    """The MLP of :mod:`kfp_cicd.model.network` sized by ``hidden_units``/``dropout``."""
    return TabularMLP(input_dim, tuple(int(u) for u in params["hidden_units"]), float(params["dropout"]))


def place_data(features: torch.Tensor, labels: torch.Tensor,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Device-resident tensors where they fit (CPU, or half the GPU's free memory); else pinned."""
    if device.type != "cuda":
        return features.contiguous(), labels.contiguous()
    free_bytes, _ = torch.cuda.mem_get_info(device)
    if features.nbytes + labels.nbytes < free_bytes // 2:
        return features.to(device), labels.to(device)
    return features.contiguous().pin_memory(), labels.contiguous().pin_memory()


def run_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: torch.nn.Module,
              x: torch.Tensor, y: torch.Tensor, indices: torch.Tensor, batch_size: int,
              device: torch.device, bf16: bool,
              on_step: Callable[[int], None] | None = None) -> torch.Tensor:
    """One pass over ``indices`` (on ``x``'s device); returns the summed loss (a tensor: no sync)."""
    loss_sum = torch.zeros((), device=device)
    on_device = x.device == device
    for step, begin in enumerate(range(0, len(indices), batch_size)):
        batch = indices[begin: begin + batch_size]
        xb, yb = x[batch], y[batch]
        if not on_device:
            xb = xb.pin_memory().to(device, non_blocking=True)
            yb = yb.pin_memory().to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(xb)
        loss = loss_fn(logits.float(), yb)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(batch)
        if on_step is not None:
            on_step(step)
    return loss_sum


def train(context: TrainingContext, network: torch.nn.Module) -> None:
    """DDP training with per-epoch checkpoints, resuming from the latest one."""
    params = TabularParams.from_params(context.params)
    features, labels = context.load_tensors()
    positives = float(labels.sum())
    pos_weight = torch.tensor((len(labels) - positives) / max(positives, 1.0), device=context.device)
    x, y = place_data(features, labels, context.device)
    model = context.wrap(network)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate,
                                  weight_decay=params.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    torch.manual_seed(params.seed + 7919 * (context.rank + 1))  # this rank's dropout stream
    start_epoch = context.resume(network, optimizer)
    sampler = context.sampler(len(labels))
    for epoch in range(start_epoch, params.epochs):
        started = time.perf_counter()
        model.train()
        indices = sampler.indices(epoch).to(x.device)
        loss_sum = run_epoch(model, optimizer, loss_fn, x, y, indices, params.batch_size,
                             context.device, context.bf16, on_step=kill_hook(context.rank, epoch))
        totals = torch.stack([loss_sum, torch.tensor(float(len(indices)), device=context.device)])
        dist.all_reduce(totals)
        mean_loss = float(totals[0] / totals[1])
        context.log_epoch(epoch + 1, mean_loss, rows=int(totals[1]), seconds=time.perf_counter() - started)
        context.save_checkpoint(epoch, network, optimizer)
