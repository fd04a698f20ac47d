"""Distributed sampling as index tensors: ``DistributedSampler``'s order, without Python lists.

``torch.utils.data.DistributedSampler`` builds each epoch's indices as a Python list, which costs
more than a training step on small tabular batches. :class:`EpochSampler` computes exactly the same
indices (same seeded permutation per epoch, same padding, same rank striding: a test checks them
against ``DistributedSampler``) as one tensor that can live on the training device.
"""

from __future__ import annotations

import torch


class EpochSampler:
    """This rank's row indices for each epoch; every rank gets the same number of rows."""

    def __init__(
        self, num_rows: int, rank: int, world_size: int, seed: int = 0, shuffle: bool = True
    ) -> None:
        if num_rows < 1:
            raise ValueError(f"cannot sample from {num_rows} rows")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size}")
        self.num_rows, self.rank, self.world_size = num_rows, rank, world_size
        self.seed, self.shuffle = seed, shuffle
        self.rows_per_rank = -(-num_rows // world_size)

    def indices(self, epoch: int) -> torch.Tensor:
        """Row indices (int64, CPU) for ``epoch``, as ``DistributedSampler.set_epoch(epoch)`` gives."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(self.num_rows, generator=generator)
        else:
            order = torch.arange(self.num_rows)
        total = self.rows_per_rank * self.world_size
        if total > self.num_rows:
            repeats = -(-(total - self.num_rows) // self.num_rows)
            order = torch.cat([order, order.repeat(repeats)[: total - self.num_rows]])
        return order[self.rank : total : self.world_size]
