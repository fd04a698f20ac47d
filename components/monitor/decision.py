"""Whether to retrain, and why, in one sentence a person (and the model's lineage) can read.

Two comparisons per feature feed the decision (TFDV's comparators, as TFX's ExampleValidator
runs them): the window's **skew** against the champion's training statistics, and its **drift**
against the previous window. Either past its threshold is a reason to retrain; skew is named
first (it is what the serving model sees differently from what it learned).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kfp_cicd.errors import KfpCicdError

SKEW, WINDOW_DRIFT, NO_DRIFT, NO_CHAMPION = "skew", "window_drift", "no_drift", "no_champion"


@dataclass(frozen=True)
class RetrainingDecision:
    """The monitoring run's verdict.

    Attributes:
        retrain: whether the training pipeline runs.
        trigger: ``"skew"`` (training-serving skew past a threshold; window drift may also be
            past), ``"window_drift"`` (only the drift against the previous window), ``"no_drift"``
            or ``"no_champion"``.
        reason: the verdict in one sentence (recorded on the retrained version).
        model_name: the registered model monitored.
        champion_version: the version compared with (``""`` without a champion).
        production_data: the window checked.
        drifted_features: features past a threshold in either comparison.
        features_compared: how many features were compared.
        baseline: what the window was compared with (the champion's training statistics).
        anomaly_count: schema anomalies of the window (reported, not a trigger).
        triggered_by: the comparisons that triggered: ``"skew"``, ``"window_drift"``.
        skewed_features: features whose skew against the training statistics is past threshold.
        window_drifted_features: features whose drift against the previous window is past threshold.
        previous_window: the previous window compared with; ``""`` for the first window.
        window_statistics: where this window's statistics were stored for the next check.
        comparisons: per feature ``{feature, metric, threshold, skew, skewed, window_drift,
            window_drifted}`` (``window_drift`` None without a previous window; a value None:
            TFDV could not compare the feature).
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
    triggered_by: list[str] = field(default_factory=list)
    skewed_features: list[str] = field(default_factory=list)
    window_drifted_features: list[str] = field(default_factory=list)
    previous_window: str = ""
    window_statistics: str = ""
    comparisons: list[dict[str, Any]] = field(default_factory=list)

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


def _closest(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    compared = [d for d in records if d["value"] is not None]
    if not compared:
        return None
    return max(compared, key=lambda d: d["value"] / d["threshold"] if d["threshold"] else 0.0)


def comparisons(skew: list[dict[str, Any]], drift: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Both measurements of every compared feature side by side."""
    by_feature = {d["feature"]: d for d in drift}
    rows = []
    for record in skew:
        window = by_feature.get(record["feature"])
        rows.append(
            {
                "feature": record["feature"],
                "metric": record["metric"],
                "threshold": record["threshold"],
                "skew": record["value"],
                "skewed": record["drifted"],
                "window_drift": window["value"] if window else None,
                "window_drifted": bool(window and window["drifted"]),
            }
        )
    return rows


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


def _skew_part(skew: list[dict[str, Any]], champion_version: str) -> str:
    skewed = [d for d in skew if d["drifted"]]
    against = f"against champion version {champion_version}'s training statistics"
    if skewed:
        return f"training-serving skew in {len(skewed)} of {len(skew)} features {against}: " + ", ".join(
            _measurement(d) for d in skewed
        )
    closest = _closest(skew)
    if closest is None:
        return f"no feature could be compared {against} (drift thresholds all off?)"
    return f"no skew {against} (closest: {_measurement(closest)})"


def _drift_part(drift: list[dict[str, Any]], previous_window: str) -> str:
    if not previous_window:
        return "no previous window stored (first checked window): window drift not measured"
    drifted = [d for d in drift if d["drifted"]]
    against = f"against the {previous_window}"
    if drifted:
        return f"drift in {len(drifted)} of {len(drift)} features {against}: " + ", ".join(
            _measurement(d) for d in drifted
        )
    closest = _closest(drift)
    if closest is None:
        return f"no feature could be compared {against}"
    return f"no drift {against} (closest: {_measurement(closest)})"


def decide_from_comparisons(
    model_name: str,
    champion_version: str,
    production_data: str,
    skew: list[dict[str, Any]],
    baseline: str,
    *,
    drift: list[dict[str, Any]] | None = None,
    previous_window: str = "",
    anomaly_count: int = 0,
) -> RetrainingDecision:
    """Retrain when any feature's skew (vs training) or drift (vs the previous window) is past its
    threshold; say which, or why not.

    Args:
        skew: ``[{feature, metric, value, threshold, drifted}]``: the window vs the champion's
            training statistics (TFDV's skew comparator).
        drift: the same for the window vs the previous window (TFDV's drift comparator).
        previous_window: how the previous window is named; ``""``: there is none.
    """
    drift = drift or []
    skewed = sorted(d["feature"] for d in skew if d["drifted"])
    window_drifted = sorted(d["feature"] for d in drift if d["drifted"])
    triggered_by = [name for name, hit in ((SKEW, skewed), (WINDOW_DRIFT, window_drifted)) if hit]
    anomalies = (
        f"; the window also has {anomaly_count} schema anomal"
        f"{'y' if anomaly_count == 1 else 'ies'} (see the drift report)"
        if anomaly_count
        else ""
    )
    parts = [_skew_part(skew, champion_version), _drift_part(drift, previous_window)]
    if skewed:
        reason = f"{production_data}: {parts[0]}; {parts[1]}"
    elif window_drifted:
        reason = f"{production_data}: {parts[1]}; {parts[0]}"
    else:
        reason = (
            f"no drift in {production_data}: {parts[0]}; {parts[1]}; the champion keeps serving, "
            "nothing retrains"
        )
    return RetrainingDecision(
        retrain=bool(triggered_by),
        trigger=triggered_by[0] if triggered_by else NO_DRIFT,
        reason=reason + anomalies,
        model_name=model_name,
        champion_version=champion_version,
        production_data=production_data,
        drifted_features=sorted(set(skewed) | set(window_drifted)),
        features_compared=len(skew),
        baseline=baseline,
        anomaly_count=anomaly_count,
        triggered_by=triggered_by,
        skewed_features=skewed,
        window_drifted_features=window_drifted,
        previous_window=previous_window,
        comparisons=comparisons(skew, drift),
    )
