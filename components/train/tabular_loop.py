"""The built-in training module: a tabular MLP trained with DDP (follows :mod:`contract`).

Data arrive pre-tensorised. On GPU the whole data set is moved to the device when it fits in half
of the free memory (batches are then gathered on the device and never wait on Python or PCIe);
otherwise rows stay in pinned host memory and each batch is copied asynchronously. bf16 autocast on
GPUs that support it.

The loss is plain (unweighted) binary cross-entropy: measured on four public data sets (3-39 %
positives), weighting the rare class (``pos_weight``) only inflated its probabilities (log loss
1.7-4x worse before calibration) without a better ranking, and the parent calibrates the
probabilities on the validation rows anyway.

Early stopping: after every epoch each rank computes the unweighted BCE on its share of the
validation rows; the sums are all-reduced, so every rank sees the same mean and takes the same
decision (no rank can leave the loop alone and hang the others in a collective). The best epoch's
weights are kept and restored at the end; training stops after ``early_stopping_patience`` epochs
without an improvement (0: never). The best weights, best loss and patience counter travel in every
checkpoint, so a restarted worker continues exactly where the uninterrupted run would have been.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from kfp_cicd.components.train.contract import TrainingContext
from kfp_cicd.components.train.fault_injection import kill_hook
from kfp_cicd.model.network import TabularMLP

log = logging.getLogger("kfp_cicd.train")
# An epoch counts as better when it lowers the validation loss by more than this fraction:
# float noise (e.g. bf16 on GPU) must not reset the patience counter.
MIN_RELATIVE_IMPROVEMENT = 1e-4
VALIDATION_CHUNK_ROWS = 65_536


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
    early_stopping_patience: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TabularParams:
        return cls(
            epochs=int(params["epochs"]),
            batch_size=int(params["batch_size"]),
            learning_rate=float(params["learning_rate"]),
            hidden_units=tuple(int(u) for u in params["hidden_units"]),
            dropout=float(params["dropout"]),
            weight_decay=float(params["weight_decay"]),
            seed=int(params["seed"]),
            early_stopping_patience=int(params.get("early_stopping_patience", 0)),
        )


@dataclass
class EarlyStopping:
    """Best validation loss so far, its epoch and weights, and the epochs since it (checkpointable)."""

    patience: int
    best_loss: float = float("inf")
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def update(self, epoch: int, loss: float, network: torch.nn.Module) -> bool:
        """Record ``epoch``'s (1-based) validation ``loss``; True when it is the best so far."""
        if loss < self.best_loss * (1 - MIN_RELATIVE_IMPROVEMENT) or self.best_state is None:
            self.best_loss, self.best_epoch, self.bad_epochs = loss, epoch, 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
            return True
        self.bad_epochs += 1
        self.stopped = self.patience > 0 and self.bad_epochs >= self.patience
        return False

    def state(self) -> dict[str, Any]:
        return {
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
            "best_state": self.best_state or {},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        if not state:
            return
        self.best_loss, self.best_epoch = float(state["best_loss"]), int(state["best_epoch"])
        self.bad_epochs, self.stopped = int(state["bad_epochs"]), bool(state["stopped"])
        self.best_state = {k: v.cpu() for k, v in state["best_state"].items()} or None


def build_network(input_dim: int, params: Mapping[str, Any]) -> torch.nn.Module:
    """The MLP of :mod:`kfp_cicd.model.network` sized by ``hidden_units``/``dropout``."""
    return TabularMLP(input_dim, tuple(int(u) for u in params["hidden_units"]), float(params["dropout"]))


def place_data(
    features: torch.Tensor, labels: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Device-resident tensors where they fit (CPU, or half the GPU's free memory); else pinned."""
    if device.type != "cuda":
        return features.contiguous(), labels.contiguous()
    free_bytes, _ = torch.cuda.mem_get_info(device)
    if features.nbytes + labels.nbytes < free_bytes // 2:
        return features.to(device), labels.to(device)
    return features.contiguous().pin_memory(), labels.contiguous().pin_memory()


def run_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    indices: torch.Tensor,
    batch_size: int,
    device: torch.device,
    bf16: bool,
    on_step: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """One pass over ``indices`` (on ``x``'s device); returns the summed loss (a tensor: no sync)."""
    loss_sum = torch.zeros((), device=device)
    on_device = x.device == device
    for step, begin in enumerate(range(0, len(indices), batch_size)):
        batch = indices[begin : begin + batch_size]
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


def validation_loss(
    network: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, bf16: bool
) -> float:
    """Mean unweighted BCE over every rank's validation rows (``x``/``y``: this rank's share).

    The (sum, count) pair is all-reduced, so every rank returns the same number.
    """
    network.eval()
    totals = torch.zeros(2, device=device, dtype=torch.float64)
    with torch.no_grad():
        for begin in range(0, len(y), VALIDATION_CHUNK_ROWS):
            xb = x[begin : begin + VALIDATION_CHUNK_ROWS].to(device, non_blocking=True)
            yb = y[begin : begin + VALIDATION_CHUNK_ROWS].to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = network(xb)
            losses = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), yb, reduction="sum")
            totals[0] += losses.double()
            totals[1] += len(yb)
    dist.all_reduce(totals)
    return float(totals[0] / totals[1])


def validation_share(context: TrainingContext) -> tuple[torch.Tensor, torch.Tensor] | None:
    """This rank's validation rows (every ``world_size``-th), placed like the training rows."""
    validation = context.load_validation_tensors()
    if validation is None:
        return None
    features, labels = validation
    return place_data(
        features[context.rank :: context.world_size],
        labels[context.rank :: context.world_size],
        context.device,
    )


def train(context: TrainingContext, network: torch.nn.Module) -> None:
    """DDP training with per-epoch checkpoints, resuming from the latest one; early stopping."""
    params = TabularParams.from_params(context.params)
    features, labels = context.load_tensors()
    x, y = place_data(features, labels, context.device)
    validation = validation_share(context)
    model = context.wrap(network)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    torch.manual_seed(params.seed + 7919 * (context.rank + 1))  # this rank's dropout stream
    saved: dict[str, Any] = {}
    start_epoch = context.resume(network, optimizer, extra=saved)
    stopping = EarlyStopping(params.early_stopping_patience)
    stopping.restore(saved.get("early_stopping", {}))
    sampler = context.sampler(len(labels))
    for epoch in range(start_epoch, params.epochs):
        if stopping.stopped:
            break
        started = time.perf_counter()
        model.train()
        indices = sampler.indices(epoch).to(x.device)
        loss_sum = run_epoch(
            model,
            optimizer,
            loss_fn,
            x,
            y,
            indices,
            params.batch_size,
            context.device,
            context.bf16,
            on_step=kill_hook(context.rank, epoch),
        )
        totals = torch.stack([loss_sum, torch.tensor(float(len(indices)), device=context.device)])
        dist.all_reduce(totals)
        mean_loss = float(totals[0] / totals[1])
        extra: dict[str, float] = {}
        if validation is not None:
            extra["val_loss"] = validation_loss(network, *validation, context.device, context.bf16)
            stopping.update(epoch + 1, extra["val_loss"], network)
        context.log_epoch(
            epoch + 1, mean_loss, rows=int(totals[1]), seconds=time.perf_counter() - started, **extra
        )
        context.save_checkpoint(epoch, network, optimizer, extra={"early_stopping": stopping.state()})
    finish(context, network, stopping, validation is not None)


def finish(
    context: TrainingContext, network: torch.nn.Module, stopping: EarlyStopping, validated: bool
) -> None:
    """Put the best epoch's weights back (every rank) and report how training ended."""
    if stopping.best_state is not None:
        network.load_state_dict(stopping.best_state)
    last_epoch = context.history[-1]["epoch"] if context.history else 0
    context.report(
        best_epoch=stopping.best_epoch if validated else last_epoch,
        stopped_early=stopping.stopped,
        epochs_run=last_epoch,
        best_val_loss=stopping.best_loss if validated else None,
    )
    if context.is_main and stopping.stopped:
        log.info(
            "%sstopped early after epoch %d: no better validation loss for %d epochs; keeping "
            "epoch %d (val_loss %.4f)",
            f"{context.progress.label} " if context.progress.label else "",
            last_epoch,
            stopping.patience,
            stopping.best_epoch,
            stopping.best_loss,
        )
