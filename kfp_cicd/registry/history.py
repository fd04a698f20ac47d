"""Training curves: ``training_history.json`` in the model directory → per-epoch MLflow metrics.

Training writes one entry per epoch (``{"epoch": 1, "loss": 0.41, ...}``); every other numeric
field becomes the metric ``training/<field>`` at step ``epoch``, so the MLflow UI draws the curves
on the registered version's run. A cross-fitted model (several networks averaged) tags each entry
with its ``member`` index: its curves are ``training/member<m>/<field>``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from mlflow.entities import Metric

from kfp_cicd.errors import RegistryError

log = logging.getLogger(__name__)
HISTORY_FILE = "training_history.json"
PREFIX = "training/"


def read_training_history(model_dir: str | Path) -> list[dict]:
    """The per-epoch entries, or [] when the model has no history file."""
    path = Path(model_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    try:
        history = json.loads(path.read_text())
    except ValueError as exc:
        raise RegistryError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise RegistryError(f'{path} must be a list of per-epoch objects, e.g. [{{"epoch": 1, "loss": 0.4}}]')
    return history


def history_metrics(history: list[dict], timestamp_ms: int | None = None) -> list[Metric]:
    """One MLflow metric per numeric field per epoch (step = ``epoch``, else the entry's position)."""
    timestamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    metrics = []
    for position, entry in enumerate(history):
        step = int(entry.get("epoch", position))
        prefix = f"{PREFIX}member{int(entry['member'])}/" if "member" in entry else PREFIX
        for name, value in entry.items():
            if name in ("epoch", "member") or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                metrics.append(Metric(f"{prefix}{name}", float(value), timestamp, step))
    log.info("training history: %d epochs, %d metric points", len(history), len(metrics))
    return metrics
