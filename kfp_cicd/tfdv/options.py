"""The TFDV jobs' tunables (validate_data, check_drift), parsed from plain string/number parameters.

Pipeline parameters are strings and numbers, so lists and maps arrive as text: the anomaly kinds
to tolerate as a comma-separated list, per-feature drift thresholds as a JSON object, Beam
pipeline options as a command line. This module turns them into a checked
:class:`ValidationOptions`, or a :class:`~kfp_cicd.errors.DataError` that says what to write.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from typing import Any

from kfp_cicd.errors import DataError

PROCESSING_MODES = ("auto", "in_memory", "beam")
DEFAULT_DRIFT_THRESHOLD = 0.1
DEFAULT_BEAM_THRESHOLD_MB = 1024.0
DEFAULT_RANGE_TOLERANCE = 1.0
DEFAULT_MAX_UNKNOWN_CATEGORY_FRACTION = 0.01


@dataclass(frozen=True)
class ValidationOptions:
    """Drift and scale settings of one validation (the schema and label are separate inputs).

    Attributes:
        baseline_statistics: statistics to check drift against (a ``train_stats.pb`` or a
            statistics directory; local, ``gs://`` or ``s3://``); ``""``: no drift check.
        drift_thresholds: per-feature thresholds (L-infinity for categorical features,
            Jensen-Shannon divergence for numeric ones); a negative one turns a feature's check off.
        drift_default_threshold: the threshold of every feature not in ``drift_thresholds``.
        processing: ``"auto"``, ``"in_memory"`` or ``"beam"``.
        beam_options: Beam pipeline flags, e.g. ``("--runner=DataflowRunner", "--project=p")``.
        beam_threshold_mb: in ``auto`` mode, files above this size use Beam when ``beam_options``
            name a runner (local data never goes to the DirectRunner by default).
        sample_rate: fraction of rows the statistics are computed on, in (0, 1].
        range_tolerance: how far past an observed range (a numeric range the schema got from
            training data, tagged ``kfp-cicd:observed-range``) values may go, as a fraction of
            the range's width on each side; a range starting at >= 0 never goes below 0.
            Hand-curated ranges are used as written.
        max_unknown_category_fraction: the fraction of a categorical column's values that may be
            outside the schema's domain before it is an anomaly (features whose schema sets its
            own ``distribution_constraints`` keep them).
        reference_name: how the reports name the reference the schema and baseline statistics
            come from (e.g. ``"champion fraud-ab12cd version 3"``); ``""``: none (first release,
            the schema is inferred from the training data).
    """

    baseline_statistics: str = ""
    drift_thresholds: dict[str, float] = field(default_factory=dict)
    drift_default_threshold: float = DEFAULT_DRIFT_THRESHOLD
    processing: str = "auto"
    beam_options: tuple[str, ...] = ()
    beam_threshold_mb: float = DEFAULT_BEAM_THRESHOLD_MB
    sample_rate: float = 1.0
    range_tolerance: float = DEFAULT_RANGE_TOLERANCE
    max_unknown_category_fraction: float = DEFAULT_MAX_UNKNOWN_CATEGORY_FRACTION
    reference_name: str = ""

    def __post_init__(self) -> None:
        if self.processing not in PROCESSING_MODES:
            raise DataError(
                f"processing must be one of {', '.join(PROCESSING_MODES)}, not {self.processing!r}"
            )
        if not (0.0 < self.sample_rate <= 1.0):
            raise DataError(f"sample_rate must be in (0, 1], not {self.sample_rate}")
        if not (self.beam_threshold_mb >= 0 and math.isfinite(self.beam_threshold_mb)):
            raise DataError(f"beam_threshold_mb must be a non-negative number, not {self.beam_threshold_mb}")
        if not (self.range_tolerance >= 0 and math.isfinite(self.range_tolerance)):
            raise DataError(
                f"range_tolerance must be a non-negative number (1.0: values may go the "
                f"observed range's width past it), not {self.range_tolerance}"
            )
        if not (0.0 <= self.max_unknown_category_fraction <= 1.0):
            raise DataError(
                f"max_unknown_category_fraction must be in [0, 1] (0.01: up to 1% of a "
                f"column's values may be unknown categories), not {self.max_unknown_category_fraction}"
            )

    def job_fields(self) -> dict[str, Any]:
        """The ``drift``, ``scale`` and ``contract`` objects and ``reference_name`` of a tfdv_job.py
        request."""
        return {
            "contract": {
                "range_tolerance": self.range_tolerance,
                "max_unknown_category_fraction": self.max_unknown_category_fraction,
            },
            "reference_name": self.reference_name,
            "drift": {"default": self.drift_default_threshold, "features": dict(self.drift_thresholds)},
            "scale": {
                "processing": self.processing,
                "beam_options": list(self.beam_options),
                "beam_threshold_bytes": int(self.beam_threshold_mb * 1024 * 1024),
                "sample_rate": self.sample_rate,
            },
        }


def parse_tolerated_kinds(text: str) -> tuple[str, ...]:
    """``"SCHEMA_NEW_COLUMN, FEATURE_TYPE_LOW_FRACTION_PRESENT"`` -> a tuple of kind names."""
    kinds = tuple(kind.strip().upper() for kind in (text or "").split(",") if kind.strip())
    bad = [kind for kind in kinds if not kind.replace("_", "").isalnum()]
    if bad:
        raise DataError(
            f"tolerate_anomalies must be a comma-separated list of TFDV anomaly kinds "
            f"(e.g. SCHEMA_NEW_COLUMN,ENUM_TYPE_UNEXPECTED_STRING_VALUES), not {bad}"
        )
    return kinds


def parse_drift_thresholds(text: str) -> dict[str, float]:
    """``'{"amount": 0.05, "country": 0.2}'`` -> ``{"amount": 0.05, "country": 0.2}``."""
    if not (text or "").strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as error:
        raise DataError(
            f"drift_thresholds is not valid JSON ({error}); write an object such as "
            '{"amount": 0.05, "country": 0.2}'
        ) from error
    if not isinstance(document, dict) or not all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in document.values()
    ):
        raise DataError(
            "drift_thresholds must be a JSON object of feature -> number, such as "
            f'{{"amount": 0.05}}; got {text!r}'
        )
    return {str(name): float(value) for name, value in document.items()}


def parse_beam_options(text: str) -> tuple[str, ...]:
    """A Beam command line (``"--runner=DataflowRunner --project=p"``) -> its flags."""
    try:
        flags = tuple(shlex.split(text or ""))
    except ValueError as error:
        raise DataError(f"beam_options is not a valid command line: {error}") from error
    for index, flag in enumerate(flags):
        previous = flags[index - 1] if index else ""
        if not flag.startswith("--") and (not previous.startswith("--") or "=" in previous):
            raise DataError(
                f"beam_options must be Beam pipeline flags (--name=value or --name "
                f"value), but {flag!r} follows no flag"
            )
    return flags
