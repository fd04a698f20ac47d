"""Per-epoch progress: the history entries and the log line (loss, val_loss, rows/s, ETA) rank 0 prints."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("kfp_cicd.train.progress")


def format_duration(seconds: float) -> str:
    """``1h02m03s`` / ``2m03s`` / ``3.4s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


@dataclass
class EpochProgress:
    """History of finished epochs; estimates time left from the epochs run in this process.

    ``label`` prefixes the line (``member 2/5`` when several networks are cross-fitted). The ETA
    assumes every epoch up to ``total_epochs`` runs; early stopping may end sooner.
    """

    total_epochs: int
    history: list[dict] = field(default_factory=list)
    label: str = ""
    _seconds_this_run: list[float] = field(default_factory=list)

    def record(self, epoch: int, loss: float, rows: int, seconds: float, **extra: float) -> dict:
        """Add finished ``epoch`` (1-based); ``rows`` is the global row count of the epoch."""
        self._seconds_this_run.append(seconds)
        entry = {
            "epoch": epoch,
            "loss": float(loss),
            "seconds": round(seconds, 4),
            "rows_per_second": round(rows / seconds, 1) if seconds > 0 else 0.0,
            **extra,
        }
        self.history.append(entry)
        return entry

    def eta_seconds(self) -> float:
        done = self.history[-1]["epoch"] if self.history else 0
        if not self._seconds_this_run:
            return 0.0
        return (self.total_epochs - done) * sum(self._seconds_this_run) / len(self._seconds_this_run)

    def line(self, entry: dict) -> str:
        validation = f"val_loss {entry['val_loss']:.4f} " if "val_loss" in entry else ""
        prefix = f"{self.label} " if self.label else ""
        return (
            f"{prefix}epoch {entry['epoch']}/{self.total_epochs} loss {entry['loss']:.4f} {validation}"
            f"{entry['rows_per_second']:,.0f} rows/s ({entry['seconds']:.2f}s) "
            f"ETA {format_duration(self.eta_seconds())}"
        )
