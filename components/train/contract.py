"""The bring-your-own-training-code contract: what a training module provides and what it gets.

A training module (``entry_point``, a module importable in the training image) defines two functions:

``build_network(input_dim: int, params: Mapping[str, Any]) -> torch.nn.Module``
    The network, mapping preprocessed features ``[batch, input_dim]`` (float32) to one logit per
    row ``[batch]``. Called on every rank before training and again by the parent task to load the
    trained weights for packaging, so it must build the same architecture from the same params.

``train(context: TrainingContext, network: torch.nn.Module) -> None``
    Trains ``network`` in place on every rank. The plumbing has already chosen the device and
    backend, initialised the process group and moved ``network`` to ``context.device``. When it
    returns, ``network`` must hold the weights to package (e.g. the best epoch's, not the last).

What ``train`` gets (``context``):

- ``context.load_tensors()``: the training rows, preprocessed (``features`` [rows, input_dim] and
  0/1 ``labels`` [rows], float32, CPU, memory-mapped).
- ``context.load_validation_tensors()``: the validation rows carved out of the training data by the
  parent (stratified on the label, seeded, never trained on), in the same form, or None when the data
  set is too small to hold any out. Use them for early stopping; the parent also scores them with the
  returned network to calibrate its probabilities and choose the decision threshold, whether or not
  ``train`` looked at them.
- ``context.params``: the hyper-parameters (``epochs``, ``batch_size``, ``learning_rate``,
  ``hidden_units``, ``dropout``, ``weight_decay``, ``seed``, ``early_stopping_patience``, with
  automatic values already resolved from the data set's shape) plus ``entry_point_params``.
- ``context.sampler()``, ``context.wrap()``, ``context.resume()`` / ``context.save_checkpoint()``
  (with an ``extra`` dict for state of your own, e.g. early stopping's best weights and patience
  counter, so a restarted worker continues exactly), ``context.log_epoch()`` (extra figures such as
  ``val_loss`` go into the history) and ``context.report()`` (facts about the run, e.g.
  ``best_epoch`` and ``stopped_early``, recorded in the training summary).

On small data sets the parent cross-fits: it splits the training rows into k stratified folds and
calls ``build_network`` and ``train`` once per fold (a fresh network, seed and context each time,
the held-out fold as the validation rows), then packages the average of the k networks' logits.
``train`` needs to do nothing different for that.

The plumbing around it is the same as for the built-in tabular MLP
(``kfp_cicd.components.train.tabular_loop``, itself a training module following this contract):
rank/world/master discovery (:mod:`launch_env`), NCCL on CUDA / gloo on CPU, bf16 where supported,
pre-tensorised data (``context.load_tensors()``, ``context.load_validation_tensors()``),
a distributed sampler (``context.sampler()``),
checkpoints with resume (``context.resume()`` / ``context.save_checkpoint()``), progress lines and the
history (``context.log_epoch()``). When ``train`` returns, rank 0's weights are saved and the parent
packages them with the fitted preprocessing as the MLflow pyfunc model, the same model output the
built-in path produces (evaluation, registry and serving need nothing else).
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from kfp_cicd.components.train.checkpoints import CheckpointStore, capture_rng_state, restore_rng_state
from kfp_cicd.components.train.progress import EpochProgress
from kfp_cicd.components.train.sampling import EpochSampler
from kfp_cicd.errors import KfpCicdError

log = logging.getLogger("kfp_cicd.train")
BUILTIN_ENTRY_POINT = "kfp_cicd.components.train.tabular_loop"
# The tensors the parent writes into a data directory (the validation pair may be absent).
FEATURES_FILE, LABELS_FILE = "features.pt", "labels.pt"
VALIDATION_FEATURES_FILE, VALIDATION_LABELS_FILE = "val_features.pt", "val_labels.pt"
# A cross-fitted run's data directory lists its members' subdirectories here (JSON list of names).
MEMBERS_FILE = "members.json"


def member_dirs(data_dir: Path) -> list[tuple[str, Path]]:
    """The training runs in ``data_dir``: ``[("", data_dir)]``, or one ``(name, subdirectory)`` each."""
    listing = data_dir / MEMBERS_FILE
    if not listing.is_file():
        return [("", data_dir)]
    return [(name, data_dir / name) for name in json.loads(listing.read_text())]


class EntryPointError(KfpCicdError, ValueError):
    """The training module cannot be imported or does not follow the contract."""


@dataclass(frozen=True)
class EntryPoint:
    """A training module's two functions."""

    module: str
    build_network: Callable[[int, Mapping[str, Any]], torch.nn.Module]
    train: Callable[[TrainingContext, torch.nn.Module], None]


def load_entry_point(module: str = "") -> EntryPoint:
    """Import ``module`` (the built-in tabular MLP when empty) and check it follows the contract."""
    module = module.strip() or BUILTIN_ENTRY_POINT
    try:
        loaded = importlib.import_module(module)
    except ImportError as error:
        raise EntryPointError(
            f"training module {module!r} cannot be imported ({error}); it must be "
            "installed in the training image (pip install your package there)"
        ) from None
    missing = [name for name in ("build_network", "train") if not callable(getattr(loaded, name, None))]
    if missing:
        raise EntryPointError(
            f"training module {module!r} lacks {' and '.join(missing)}: it must define "
            "build_network(input_dim, params) and train(context, network); see "
            "components/train/README.md ('Bring your own training code')"
        )
    return EntryPoint(module=module, build_network=loaded.build_network, train=loaded.train)


@dataclass
class TrainingContext:
    """Everything a training module's ``train`` gets from the launch plumbing."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str
    bf16: bool
    launcher: str
    data_dir: Path
    params: dict[str, Any]
    checkpoints: CheckpointStore
    progress: EpochProgress
    started: float = field(default_factory=time.perf_counter)
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        """Rank 0 logs progress and writes checkpoints."""
        return self.rank == 0

    @property
    def epochs(self) -> int:
        return int(self.params["epochs"])

    @property
    def seed(self) -> int:
        return int(self.params.get("seed", 0))

    @property
    def history(self) -> list[dict]:
        return self.progress.history

    def load_tensors(self, mmap: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The preprocessed ``features`` [rows, input_dim] float32 and ``labels`` [rows] float32 (CPU)."""
        features = torch.load(self.data_dir / FEATURES_FILE, mmap=mmap, weights_only=True)
        labels = torch.load(self.data_dir / LABELS_FILE, mmap=mmap, weights_only=True)
        return features, labels

    @property
    def has_validation(self) -> bool:
        """Whether the parent held validation rows out (not on data sets too small to spare any)."""
        return (self.data_dir / VALIDATION_FEATURES_FILE).is_file()

    def load_validation_tensors(self, mmap: bool = True) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The validation rows as :meth:`load_tensors` gives the training rows; None when there are none.

        Every rank gets all of them (shard them with ``[rank::world_size]`` to split the work, and
        all-reduce the sums so that every rank takes the same early-stopping decision).
        """
        if not self.has_validation:
            return None
        features = torch.load(self.data_dir / VALIDATION_FEATURES_FILE, mmap=mmap, weights_only=True)
        labels = torch.load(self.data_dir / VALIDATION_LABELS_FILE, mmap=mmap, weights_only=True)
        return features, labels

    def sampler(self, num_rows: int, shuffle: bool = True) -> EpochSampler:
        """This rank's indices per epoch, as ``DistributedSampler`` (seeded with ``params['seed']``)."""
        return EpochSampler(num_rows, self.rank, self.world_size, seed=self.seed, shuffle=shuffle)

    def wrap(self, network: torch.nn.Module) -> torch.nn.Module:
        """``network`` in DistributedDataParallel (gradients averaged over ranks).

        A world of one has nothing to average: the network comes back as it is, sparing DDP's
        per-step bucketing and all-reduce (measured at 10-20 % of a step on one H200).
        """
        if self.world_size == 1:
            return network
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(network, device_ids=device_ids)

    def resume(
        self,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        extra: MutableMapping[str, Any] | None = None,
    ) -> int:
        """Load the latest checkpoint into ``network``/``optimizer``; returns the first epoch to run.

        Restores this rank's random generators when the world size is unchanged, so a resumed run
        computes what an uninterrupted one would have. ``extra``, when given, is filled with what
        was passed as ``extra`` to :meth:`save_checkpoint` (left as it is when nothing was saved).
        """
        state = self.checkpoints.load_latest(map_location=self.device)
        if state is None:
            return 0
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        self.progress.history[:] = state["history"]
        if extra is not None:
            extra.update(state.get("extra") or {})
        rng_states = state.get("rng", [])
        if len(rng_states) == self.world_size:
            restore_rng_state(rng_states[self.rank])
        elif self.is_main:
            log.warning(
                "checkpoint was written by %d ranks, this run has %d: random streams restart",
                len(rng_states),
                self.world_size,
            )
        if self.is_main:
            log.info("resuming from %s after epoch %d", self.checkpoints.directory, state["epoch"] + 1)
        return int(state["sampler_epoch"])

    def save_checkpoint(
        self,
        epoch: int,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Checkpoint after ``epoch`` (0-based; every rank must call it: RNG states are gathered).

        ``extra``: more state to restore on resume (tensors, numbers, strings, lists and dicts of
        them; rank 0's is written, so it must be the same on every rank).
        """
        rng_states: list[Any] = [None] * self.world_size
        dist.all_gather_object(rng_states, capture_rng_state())
        if self.is_main:
            model_state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
            self.checkpoints.save(
                epoch,
                {
                    "model": model_state,
                    "optimizer": optimizer.state_dict(),
                    "sampler_epoch": epoch + 1,
                    "history": self.history,
                    "rng": rng_states,
                    "world_size": self.world_size,
                    "extra": dict(extra or {}),
                },
            )
        dist.barrier()

    def log_epoch(self, epoch: int, loss: float, rows: int, seconds: float, **extra: float) -> dict:
        """Record finished ``epoch`` (1-based, ``rows`` over all ranks); rank 0 logs the line.

        ``extra`` figures (e.g. ``val_loss``) are stored in the history entry and shown in the line.
        """
        entry = self.progress.record(epoch, loss, rows, seconds, **extra)
        if self.is_main:
            log.info("%s", self.progress.line(entry))
        return entry

    def report(self, **facts: Any) -> None:
        """Facts about the finished run (JSON values) for the training summary, e.g. ``best_epoch``."""
        self.results.update(facts)
