"""Metrics per segment (slice) of the holdout, and the largest gaps between segments.

A slice key is a column: categorical columns (and numeric ones with few distinct values) slice by
value; other numeric columns slice into bands, either quantile bands (``amount`` or ``amount:q5``)
or bands between explicit edges (``amount:50|200|1000``). Recall needs positives and the false
positive rate needs negatives, so segments that are too small for a rate are left out of that
rate's gap (and said so) instead of adding noise to a fairness check.

``slice_keys="auto"`` slices by every column the model treats as categorical that has between
:data:`AUTO_MIN_VALUES` and :data:`AUTO_MAX_VALUES` distinct values in the evaluation data (more
values would make segments too small to measure; one value is no slice at all). "auto" may be
combined with explicit keys (``"auto,amount"``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from kfp_cicd.errors import DataError

DEFAULT_QUANTILE_BANDS = 4
MAX_VALUE_SEGMENTS = 12  # a numeric column with more distinct values is banded
_KEY = re.compile(r"^(?P<column>[^:]+?)(?::(?:q(?P<bands>\d+)|(?P<edges>[-+0-9.eE|]+)))?$")
GAP_METRICS = ("recall", "false_positive_rate")
AUTO = "auto"
AUTO_MIN_VALUES = 2
AUTO_MAX_VALUES = 20


@dataclass(frozen=True)
class SliceKey:
    """One slicing column and, for numeric bands, the number of quantile bands or the edges."""

    column: str
    quantile_bands: int | None = None
    edges: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        if self.edges:
            return f"{self.column}:{'|'.join(f'{e:g}' for e in self.edges)}"
        return f"{self.column}:q{self.quantile_bands}" if self.quantile_bands else self.column


def _slice_parts(text: str) -> list[str]:
    return [p for p in (p.strip() for p in (text or "").split(",")) if p]


def wants_auto_slices(text: str) -> bool:
    """Whether ``slice_keys`` asks for the automatic categorical slices (the token ``auto``)."""
    return any(part.lower() == AUTO for part in _slice_parts(text))


def parse_slice_keys(text: str) -> list[SliceKey]:
    """``"country, channel, amount:50|200|1000, account_age_days:q5"`` → slice keys ("" → none).

    The token ``auto`` is left out here (see :func:`wants_auto_slices` and :func:`auto_slice_keys`).
    """
    keys = []
    for part in _slice_parts(text):
        if part.lower() == AUTO:
            continue
        match = _KEY.match(part)
        if not match:
            raise DataError(f"slice key {part!r} is not 'column', 'column:qN', 'column:e1|e2|…' or 'auto'")
        edges: tuple[float, ...] = ()
        if match["edges"]:
            try:
                edges = tuple(sorted(float(e) for e in match["edges"].split("|") if e))
            except ValueError as exc:
                raise DataError(f"slice key {part!r}: band edges must be numbers: {exc}") from exc
        bands = int(match["bands"]) if match["bands"] else None
        if bands is not None and bands < 2:
            raise DataError(f"slice key {part!r}: use at least 2 quantile bands")
        keys.append(SliceKey(match["column"].strip(), bands, edges))
    return keys


@dataclass(frozen=True)
class AutoSlices:
    """The categorical columns ``auto`` slices by, and those it passed over with the reason."""

    keys: tuple[SliceKey, ...]
    skipped: dict[str, str]

    def sentence(self) -> str:
        chosen = ", ".join(k.column for k in self.keys) or "none"
        text = (
            f"slice_keys 'auto': categorical columns with {AUTO_MIN_VALUES}-{AUTO_MAX_VALUES} distinct "
            f"values in the evaluation data: {chosen}"
        )
        if self.skipped:
            text += "; not sliced: " + ", ".join(f"{c} ({why})" for c, why in self.skipped.items())
        return text


def auto_slice_keys(
    frame: pd.DataFrame,
    categorical: list[str] | tuple[str, ...],
    *,
    min_values: int = AUTO_MIN_VALUES,
    max_values: int = AUTO_MAX_VALUES,
) -> AutoSlices:
    """Slice keys for the model's categorical columns with ``min_values``..``max_values`` distinct
    values in ``frame`` (missing values not counted)."""
    keys, skipped = [], {}
    for column in categorical:
        if column not in frame.columns:
            skipped[column] = "not in the evaluation data"
            continue
        distinct = int(frame[column].nunique(dropna=True))
        if min_values <= distinct <= max_values:
            keys.append(SliceKey(column))
        else:
            skipped[column] = f"{distinct} distinct values"
    return AutoSlices(tuple(keys), skipped)


@dataclass(frozen=True)
class SegmentMetrics:
    """Counts and rates of one segment at the operating threshold (None: too small to measure)."""

    key: str
    segment: str
    rows: int
    positives: int
    flagged: int
    recall: float | None
    false_positive_rate: float | None
    precision: float | None
    roc_auc: float | None


@dataclass(frozen=True)
class Gap:
    """The spread of one rate across one key's measurable segments."""

    key: str
    metric: str
    gap: float | None
    highest: str = ""
    highest_value: float | None = None
    lowest: str = ""
    lowest_value: float | None = None
    measured_segments: int = 0
    note: str = ""

    def sentence(self) -> str:
        if self.gap is None:
            return f"{self.metric} gap across {self.key}: not measured ({self.note})"
        return (
            f"{self.metric} gap across {self.key} = {self.gap:.4f} (highest {self.highest} "
            f"{self.highest_value:.4f}, lowest {self.lowest} {self.lowest_value:.4f}, "
            f"{self.measured_segments} segments)"
        )


@dataclass(frozen=True)
class SliceReport:
    segments: list[SegmentMetrics] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    note: str = ""  # how the keys were chosen, when "auto" chose them

    def to_dict(self) -> dict:
        return {
            "segments": [asdict(s) for s in self.segments],
            "gaps": [asdict(g) for g in self.gaps],
            "note": self.note,
        }


def _band_labels(values: pd.Series, key: SliceKey) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    if key.edges:
        bins = [-np.inf, *key.edges, np.inf]
        banded = pd.cut(numeric, bins=bins, right=False)
    else:
        bands = key.quantile_bands or DEFAULT_QUANTILE_BANDS
        banded = pd.qcut(numeric, q=bands, duplicates="drop")
    return banded.astype(str).where(numeric.notna(), "missing")


def segment_labels(frame: pd.DataFrame, key: SliceKey) -> pd.Series:
    """Each row's segment name under ``key``."""
    if key.column not in frame.columns:
        raise DataError(
            f"slice key {key.column!r} is not a column of the evaluation data; columns: "
            f"{sorted(frame.columns)}"
        )
    values = frame[key.column]
    is_numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if key.edges or key.quantile_bands:
        if not is_numeric:
            raise DataError(
                f"slice key {key.label!r} asks for numeric bands but {key.column!r} is not "
                "numeric; use the plain column name to slice by value"
            )
        return _band_labels(values, key)
    if is_numeric and values.nunique(dropna=True) > MAX_VALUE_SEGMENTS:
        return _band_labels(values, key)
    return values.astype(str).where(values.notna(), "missing")


def _rate(numerator: int, denominator: int, minimum: int) -> float | None:
    return numerator / denominator if denominator >= max(minimum, 1) else None


def segment_metrics(
    key: str,
    segment: str,
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    min_rows: int,
    min_positives: int,
) -> SegmentMetrics:
    flagged = scores >= threshold
    positives = int(labels.sum())
    negatives = len(labels) - positives
    big_enough = len(labels) >= min_rows
    both = 0 < positives < len(labels)
    return SegmentMetrics(
        key=key,
        segment=segment,
        rows=len(labels),
        positives=positives,
        flagged=int(flagged.sum()),
        recall=_rate(int((flagged & (labels == 1)).sum()), positives, min_positives) if big_enough else None,
        false_positive_rate=(
            _rate(int((flagged & (labels == 0)).sum()), negatives, 1) if big_enough else None
        ),
        precision=_rate(int((flagged & (labels == 1)).sum()), int(flagged.sum()), 1) if big_enough else None,
        roc_auc=float(roc_auc_score(labels, scores)) if big_enough and both else None,
    )


def metric_gap(key: str, metric: str, segments: list[SegmentMetrics]) -> Gap:
    measured = [(s.segment, getattr(s, metric)) for s in segments if getattr(s, metric) is not None]
    if len(measured) < 2:
        return Gap(
            key,
            metric,
            None,
            measured_segments=len(measured),
            note=f"{len(measured)} of {len(segments)} segments are large enough",
        )
    high = max(measured, key=lambda m: m[1])
    low = min(measured, key=lambda m: m[1])
    return Gap(key, metric, high[1] - low[1], high[0], high[1], low[0], low[1], len(measured))


def slice_report(
    frame: pd.DataFrame,
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    keys: list[SliceKey],
    *,
    min_rows: int,
    min_positives: int,
    note: str = "",
) -> SliceReport:
    """Per-segment metrics for every key, and the recall / FPR gap across each key's segments."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    report = SliceReport(note=note)
    for key in keys:
        names = segment_labels(frame, key).to_numpy()
        segments = [
            segment_metrics(
                key.label,
                str(name),
                labels[names == name],
                scores[names == name],
                threshold,
                min_rows,
                min_positives,
            )
            for name in sorted(set(names), key=str)
        ]
        report.segments.extend(segments)
        report.gaps.extend(metric_gap(key.label, metric, segments) for metric in GAP_METRICS)
    return report
