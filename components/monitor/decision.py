"""Whether to retrain, and why, in one sentence a person (and the model's lineage) can read."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kfp_cicd.errors import KfpCicdError

DRIFT, NO_DRIFT, NO_CHAMPION = "drift", "no_drift", "no_champion"


@dataclass(frozen=True)
class RetrainingDecision:
    """The monitoring run's verdict.

    Attributes:
        retrain: whether the training pipeline runs.
        trigger: ``"drift"``, ``"no_drift"`` or ``"no_champion"``.
        reason: the verdict in one sentence (recorded on the retrained version).
        model_name: the registered model monitored.
        champion_version: the version compared with (``""`` without a champion).
        production_data: the window checked.
        drifted_features: features past their threshold.
        features_compared: how many features were compared.
        baseline: what the window was compared with.
        anomaly_count: schema anomalies of the window (reported, not a trigger).
    """

    retrain: bool
    trigger: str
    reason: str
    model_name: str
    champion_version: str = ""
    production_data: str = ""
    drifted_features: list[str] = field(default_factory=list)
    features_compared: int = 0
    baseline: str = ""
    anomaly_count: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def read(cls, path: str | Path) -> RetrainingDecision:
        """The decision a monitoring task wrote; a clear error for anything else."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(**document)
        except (OSError, ValueError, TypeError) as exc:
            raise KfpCicdError(
                f"{path} is not a monitoring decision (check_drift's decision output): {exc}"
            ) from exc


def _measurement(record: dict[str, Any]) -> str:
    value = "n/a" if record["value"] is None else f"{record['value']:.3f}"
    relation = ">" if record["drifted"] else "<="
    return f"{record['feature']} ({record['metric']} {value} {relation} {record['threshold']:g})"


def decide_without_champion(model_name: str, production_data: str) -> RetrainingDecision:
    """Nothing serves yet: train the first champion."""
    return RetrainingDecision(
        retrain=True,
        trigger=NO_CHAMPION,
        model_name=model_name,
        production_data=production_data,
        reason=f"{model_name} has no champion yet, so there is no baseline to compare "
        f"{production_data} with: training the first one",
    )


def decide_from_drift(
    model_name: str,
    champion_version: str,
    production_data: str,
    drift: list[dict[str, Any]],
    baseline: str,
    anomaly_count: int = 0,
) -> RetrainingDecision:
    """Retrain when any compared feature drifted past its threshold; say which, or why not."""
    drifted = [d for d in drift if d["drifted"]]
    compared = [d for d in drift if d["value"] is not None]
    anomalies = (
        f"; the window also has {anomaly_count} schema anomal"
        f"{'y' if anomaly_count == 1 else 'ies'} (see the drift report)"
        if anomaly_count
        else ""
    )
    if drifted:
        reason = (
            f"drift in {len(drifted)} of {len(drift)} features of {production_data} against "
            f"champion version {champion_version}: " + ", ".join(_measurement(d) for d in drifted) + anomalies
        )
    elif compared:
        largest = max(compared, key=lambda d: d["value"] / d["threshold"] if d["threshold"] else 0)
        reason = (
            f"no drift: all {len(drift)} compared features of {production_data} are within their "
            f"thresholds against champion version {champion_version} (closest: "
            f"{_measurement(largest)}); the champion keeps serving, nothing retrains" + anomalies
        )
    else:
        reason = (
            f"no drift measured: no feature of {production_data} could be compared with champion "
            f"version {champion_version}'s baseline (drift thresholds all off?); nothing "
            "retrains" + anomalies
        )
    return RetrainingDecision(
        retrain=bool(drifted),
        trigger=DRIFT if drifted else NO_DRIFT,
        reason=reason,
        model_name=model_name,
        champion_version=champion_version,
        production_data=production_data,
        drifted_features=[d["feature"] for d in drifted],
        features_compared=len(drift),
        baseline=baseline,
        anomaly_count=anomaly_count,
    )
