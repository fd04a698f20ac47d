"""Per-epoch checkpoints a restarted job resumes from.

A checkpoint holds everything the next epoch depends on: model and optimiser state, the sampler's
epoch, the history so far and every rank's random-number-generator states (dropout masks and the
next epoch's shuffle must come out as they would have without the restart). Files are written
atomically (temporary file + ``os.replace``), so a worker killed mid-write leaves the previous
checkpoint intact; a file that still fails to load is skipped in favour of the one before it.

A ``run_key`` (everything that changes what training computes, except the epoch count) is stored
with every checkpoint: resuming from another run's checkpoint fails with a clear message instead of
silently mixing runs that share a directory.
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kfp_cicd.errors import KfpCicdError

log = logging.getLogger(__name__)
CHECKPOINT_PATTERN = re.compile(r"^epoch-(\d{4,})\.pt$")


class CheckpointMismatch(KfpCicdError, ValueError):
    """The checkpoint directory holds checkpoints of a different run."""


def capture_rng_state() -> dict[str, Any]:
    """This process's generator states: Python, NumPy, torch CPU and (if present) CUDA."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(gauss)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng_state` captured."""
    python_state = state["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    kind, keys, position, has_gauss, gauss = state["numpy"]
    # A checkpoint loaded onto a GPU brings these keys along to it: NumPy needs them on the host.
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


class CheckpointStore:
    """``epoch-NNNN.pt`` files in one directory; ``keep`` newest are kept."""

    def __init__(self, directory: str | Path, run_key: str = "", keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = Path(directory)
        self.run_key = run_key
        self.keep = keep

    def files(self) -> list[Path]:
        """Checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [
            (int(m.group(1)), p) for p in self.directory.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))
        ]
        return [p for _, p in sorted(found)]

    def save(self, epoch: int, state: dict[str, Any]) -> Path:
        """Write the checkpoint after ``epoch`` (0-based) atomically; prune old ones."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"epoch-{epoch:04d}.pt"
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        torch.save({**state, "epoch": epoch, "run_key": self.run_key}, partial)
        os.replace(partial, path)
        for old in self.files()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        """The newest loadable checkpoint of this run, or None when there is none."""
        for path in reversed(self.files()):
            try:
                state = torch.load(path, map_location=map_location, weights_only=True)
            except Exception as error:  # a truncated/corrupt file: fall back to the previous one
                log.warning("checkpoint %s cannot be loaded (%s); trying an older one", path, error)
                continue
            if self.run_key and state.get("run_key") != self.run_key:
                raise CheckpointMismatch(
                    f"checkpoint {path} belongs to a different run (its settings differ from this "
                    "one's); use another checkpoint_dir or delete that directory to start over"
                )
            return state
        return None
