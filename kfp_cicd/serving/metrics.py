"""Prometheus metrics of the predictor, exposed on kserve's ``/metrics`` (the default registry).

Names match what ``manifests/monitoring`` scrapes and alerts on: traffic, errors, latency per
protocol, the prediction-score distribution, and how many scored rows fall outside the training
domain (an early sign of drift, before labels arrive). Every series carries ``model_name`` and
``model_version`` so a canary and the stable version show side by side.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import Counter, Histogram

MODEL_LABELS = ("model_name", "model_version")
PROTOCOLS = ("v1", "v2", "v2-grpc")
ERROR_KINDS = ("invalid_input", "internal")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))

PREDICTIONS = Counter("kfp_cicd_predictions", "Rows scored", (*MODEL_LABELS, "protocol"))
ERRORS = Counter(
    "kfp_cicd_prediction_errors",
    "Requests refused (invalid input) or failed",
    (*MODEL_LABELS, "protocol", "kind"),
)
LATENCY = Histogram(
    "kfp_cicd_request_latency_seconds",
    "Time to check and score one request",
    (*MODEL_LABELS, "protocol"),
    buckets=LATENCY_BUCKETS,
)
SCORES = Histogram(
    "kfp_cicd_prediction_score",
    "Predicted probability of the positive class",
    MODEL_LABELS,
    buckets=SCORE_BUCKETS,
)
OUT_OF_DOMAIN = Counter(
    "kfp_cicd_out_of_domain_inputs", "Scored rows with a value outside the training domain", MODEL_LABELS
)


@dataclass(frozen=True)
class TrainingDomain:
    """The values training saw: numeric [min, max] per column and the categories per column."""

    numeric_ranges: dict[str, tuple[float, float]]
    categories: dict[str, frozenset[str]]

    @classmethod
    def from_model(cls, python_model: object) -> TrainingDomain:
        """Read the domain from the packaged model (config ranges, the one-hot encoder's categories)."""
        config = getattr(python_model, "config", {})
        ranges = {
            name: (float(low), float(high)) for name, (low, high) in config.get("numeric_ranges", {}).items()
        }
        categories: dict[str, frozenset[str]] = {}
        preprocessor = getattr(python_model, "preprocessor", None)
        transformers = getattr(preprocessor, "named_transformers_", {})
        if "categorical" in transformers:
            encoder = transformers["categorical"].named_steps["onehot"]
            columns = list(config.get("categorical", []))
            categories = {
                column: frozenset(map(str, values))
                for column, values in zip(columns, encoder.categories_, strict=True)
            }
        return cls(ranges, categories)

    def rows_outside(self, columns: Mapping[str, Any], rows: int) -> int:
        """How many of ``rows`` rows have at least one value training never saw.

        ``columns`` maps a column name to its ``rows`` values (numpy arrays or lists, as the predictor
        checked them; a DataFrame works too): no pandas work per request.
        """
        outside = np.zeros(rows, dtype=bool)
        for column, (low, high) in self.numeric_ranges.items():
            if column in columns:
                values = np.asarray(columns[column], dtype=np.float64)
                outside |= (values < low) | (values > high)
        for column, known in self.categories.items():
            if column in columns:
                outside |= np.fromiter(
                    (str(value) not in known for value in columns[column]), dtype=bool, count=rows
                )
        return int(outside.sum())


class PredictorMetrics:
    """The metric children of one served model version."""

    def __init__(self, model_name: str, model_version: str) -> None:
        self.labels = {"model_name": model_name, "model_version": model_version or "unknown"}
        # Export every series at 0 from the start: rates and alerts need a series before its first
        # increment (a labelled metric has none until .labels() is called).
        for protocol in PROTOCOLS:
            PREDICTIONS.labels(**self.labels, protocol=protocol)
            LATENCY.labels(**self.labels, protocol=protocol)
            for kind in ERROR_KINDS:
                ERRORS.labels(**self.labels, protocol=protocol, kind=kind)
        SCORES.labels(**self.labels)
        OUT_OF_DOMAIN.labels(**self.labels)

    @contextmanager
    def request(self, protocol: str) -> Iterator[None]:
        """Time a request and count it as an error (by exception type) if it raises."""
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            kind = "invalid_input" if type(exc).__name__ == "InvalidInput" else "internal"
            ERRORS.labels(**self.labels, protocol=protocol, kind=kind).inc()
            raise
        finally:
            LATENCY.labels(**self.labels, protocol=protocol).observe(time.perf_counter() - started)

    def scored(self, protocol: str, probabilities: np.ndarray, out_of_domain_rows: int) -> None:
        PREDICTIONS.labels(**self.labels, protocol=protocol).inc(len(probabilities))
        histogram = SCORES.labels(**self.labels)
        for probability in probabilities:
            histogram.observe(float(probability))
        if out_of_domain_rows:
            OUT_OF_DOMAIN.labels(**self.labels).inc(out_of_domain_rows)
