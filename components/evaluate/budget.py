"""The inference budget: how long the candidate takes to score 1,000 rows, and how big it is."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from kfp_cicd.model.integrity import CHECKSUM_FILE

LATENCY_ROWS = 1_000
LATENCY_REPEATS = 5


@dataclass(frozen=True)
class InferenceCost:
    """Median wall time of ``predict`` on 1,000 rows (after one warm-up call) and size on disk."""

    latency_ms_per_1k_rows: float
    latency_repeats: int
    model_size_mb: float

    def to_dict(self) -> dict:
        return asdict(self)


def model_size_bytes(model_dir: str | Path) -> int:
    """Bytes of every file in the model directory (what a server downloads)."""
    return sum(
        p.stat().st_size
        for p in Path(model_dir).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.name != CHECKSUM_FILE
    )


def latency_batch(frame: pd.DataFrame, rows: int = LATENCY_ROWS) -> pd.DataFrame:
    """Exactly ``rows`` rows from ``frame`` (repeated if it is shorter)."""
    if frame.empty:
        raise ValueError("cannot time predictions on an empty table")
    repeats = -(-rows // len(frame))
    return pd.concat([frame] * repeats, ignore_index=True).head(rows)


def measure_latency_ms(
    predict: Callable[[pd.DataFrame], object], frame: pd.DataFrame, repeats: int = LATENCY_REPEATS
) -> float:
    """Median milliseconds per call of ``predict`` on a 1,000-row batch, after a warm-up call."""
    batch = latency_batch(frame)
    predict(batch)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(batch)
        timings.append((time.perf_counter() - start) * 1000.0)
    return float(statistics.median(timings))


def measure_inference_cost(
    predict: Callable[[pd.DataFrame], object],
    frame: pd.DataFrame,
    model_dir: str | Path,
    repeats: int = LATENCY_REPEATS,
) -> InferenceCost:
    return InferenceCost(
        measure_latency_ms(predict, frame, repeats), repeats, model_size_bytes(model_dir) / 1e6
    )
