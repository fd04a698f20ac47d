"""One line per step for the live console: progress while a task works, its result once it ends.

The results come from what the tasks already wrote (output parameters, artifact metadata, the
gate's decision file), the progress from the lines a task prints (the training loop's
``epoch k/N loss x`` lines, see ``components/train/progress.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kfp_cicd.local_run import TaskRecord

#: ``[member 2/5 ]epoch 3/60 loss 0.0703[ val_loss 0.0721]`` as the training loop logs it.
EPOCH_LINE = re.compile(
    r"(?P<member>member \d+/\d+ )?epoch (?P<epoch>\d+)/(?P<epochs>\d+) loss (?P<loss>[\d.]+)"
    r"(?: val_loss (?P<val_loss>[\d.]+))?"
)


def progress_headline(task: str, line: str) -> str | None:
    """What ``line`` says about ``task``'s progress, or None when it says nothing worth showing."""
    if task.startswith("train-model"):
        match = EPOCH_LINE.search(line)
        if match:
            member = match["member"] or ""
            validation = f", val_loss {match['val_loss']}" if match["val_loss"] else ""
            return f"{member}epoch {match['epoch']}/{match['epochs']}, loss {match['loss']}{validation}"
    return None


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _validated(record: TaskRecord) -> str:
    p = record.parameters
    anomalies = p.get("anomaly_count", "?")
    return (
        f"{_number(p.get('train_rows', '?'))} + {_number(p.get('eval_rows', '?'))} rows validated, "
        f"{anomalies} {'anomaly' if anomalies == 1 else 'anomalies'}"
    )


def _trained(record: TaskRecord) -> str:
    metrics = record.artifacts.get("metrics", {}).get("metadata", {})
    parts = []
    if "epochs" in metrics:
        parts.append(f"{metrics['epochs']:g} epochs")
    if "train_loss" in metrics:
        parts.append(f"loss {metrics['train_loss']:.4f}")
    if "world_size" in metrics:
        parts.append(f"{metrics['world_size']:g} workers")
    return ", ".join(parts)


def _gate(record: TaskRecord) -> str:
    approved = bool(record.parameters.get("Output"))
    metrics = record.artifacts.get("metrics", {}).get("metadata", {})
    decision_file = record.artifacts.get("decision", {}).get("uri", "")
    failed = []
    if decision_file and Path(decision_file).is_file():
        checks = json.loads(Path(decision_file).read_text()).get("checks", [])
        failed = [c["metric"] for c in checks if not c.get("passed")]
    shown = ", ".join(f"{name} {metrics[name]:.3f}" for name in ("roc_auc", "pr_auc") if name in metrics)
    if approved:
        return f"gate APPROVED ({shown})" if shown else "gate APPROVED"
    return f"gate REJECTED: {', '.join(failed) or 'see the decision'} failed" + (
        f" ({shown})" if shown else ""
    )


def _registered(record: TaskRecord) -> str:
    uri = record.parameters.get("model_uri")
    return f"registered {uri} (alias candidate)" if uri else ""


def _deployed(record: TaskRecord) -> str:
    """``smoke test passed, latency V1 30.0 ms, V2 31.9 ms; champion → 1`` from the smoke summary."""
    summary = str(record.parameters.get("smoke_summary", ""))
    latency = re.search(r"latency ([^;]+)", summary)
    rollout = record.parameters.get("rollout", "")
    try:
        champion = json.loads(rollout).get("champion") if rollout else None
    except ValueError:
        champion = None
    parts = ["smoke test passed" if "passed" in summary else (summary.split(";")[0] if summary else "")]
    if latency:
        parts.append(f"latency {latency.group(1).strip()}")
    if champion:
        parts.append(f"champion is version {champion}")
    return ", ".join(p for p in parts if p)


def _drift(record: TaskRecord) -> str:
    drifted = record.parameters.get("Output")
    return "drift found: retraining" if drifted else "no drift"


def _verdict(record: TaskRecord) -> str:
    """``NO RETRAINING: no drift`` / ``RETRAIN: …``: the verdict's first two clauses."""
    return ": ".join(str(record.parameters.get("Output", "")).split(": ")[:2])


HEADLINES: dict[str, Callable[[TaskRecord], str]] = {
    "validate-data": _validated,
    "train-model": _trained,
    "evaluate-model": _gate,
    "register-model": _registered,
    "deploy-model": _deployed,
    "check-drift": _drift,
    "monitoring-verdict": _verdict,
}


def final_headline(record: TaskRecord) -> str:
    """The result of a finished task in a line ("" for a task with nothing to say)."""
    for prefix, headline in HEADLINES.items():
        if record.name.startswith(prefix):
            return headline(record)
    return ""
