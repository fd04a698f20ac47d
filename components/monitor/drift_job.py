"""Run the skew and drift check (``kfp_cicd/tfdv/jobs/tfdv_drift_job.py``) in the TFDV environment.

TFDV cannot be imported beside kfp 2.17 (see :mod:`kfp_cicd.tfdv`), so, like validate_data, this
writes a JSON request, runs the job with the TFDV interpreter through the library's job runner
(:mod:`kfp_cicd.tfdv.runner`: its progress lines go to this task's log, the process group is killed
on timeout) and reads what it wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp_cicd.errors import DataError
from kfp_cicd.tfdv.environment import find_tfdv_python
from kfp_cicd.tfdv.jobs import DRIFT_JOB_SCRIPT
from kfp_cicd.tfdv.options import ValidationOptions
from kfp_cicd.tfdv.runner import TfdvJob, read_result, run_job
from kfp_cicd.tfdv.staging import stage

DRIFT_JOB = TfdvJob(DRIFT_JOB_SCRIPT, "drift check", "Check a smaller window or sample it (sample_rate).")
NUMERIC_HISTOGRAMS = ("auto", "quantiles", "standard")
DEFAULT_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class DriftRequest:
    """One check of a production window: skew vs a baseline, drift vs the previous window.

    Attributes:
        data: the production window (local path, ``file://``, ``gs://``, ``s3://``).
        label_column: left out of the comparison when the window carries (delayed) labels.
        baseline_statistics: a local ``train_stats.pb``; or ``""`` with ``baseline_data``.
        baseline_data: the table to compute the baseline from (the champion's training data).
        previous_statistics: the previous window's local ``window_stats.pb``; ``""``: there is
            none (the first window), window drift is not measured.
        previous_name: how messages name the previous window.
        baseline_name: how messages and the statistics view name the baseline (default: its location).
        schema_path: a text-format schema; ``""``: inferred from the baseline.
        options: drift thresholds and statistics settings (:class:`~kfp_cicd.tfdv.options.ValidationOptions`).
        numeric_histogram: buckets of numeric features' divergence: ``"auto"`` (quantiles for
            float features, standard for integer ones), ``"quantiles"`` or ``"standard"``.
    """

    data: str
    label_column: str
    baseline_statistics: str = ""
    baseline_data: str = ""
    previous_statistics: str = ""
    previous_name: str = ""
    baseline_name: str = ""
    schema_path: str = ""
    options: ValidationOptions = field(default_factory=ValidationOptions)
    numeric_histogram: str = "auto"

    def __post_init__(self) -> None:
        if not self.data:
            raise DataError(
                "no production data given: pass the location of a recent window of "
                "production data (CSV or Parquet)"
            )
        if self.numeric_histogram not in NUMERIC_HISTOGRAMS:
            raise DataError(
                f"numeric_histogram must be one of {', '.join(NUMERIC_HISTOGRAMS)}, "
                f"not {self.numeric_histogram!r}"
            )
        if not (self.baseline_statistics or self.baseline_data):
            raise DataError("a drift check needs a baseline: training statistics or training data")


@dataclass(frozen=True)
class DriftResult:
    """What the job found, and where its files are.

    Attributes:
        rows, baseline_rows, previous_rows: rows in the window, behind the baseline and in the
            previous window (0 without one).
        skew: ``[{feature, metric, value, threshold, drifted}]`` per compared feature: TFDV's
            skew comparator, the window against the baseline (training statistics).
        drift: the same per feature for TFDV's drift comparator, the window against the
            previous window; ``[]`` without a previous window.
        anomalies: schema anomalies of the window (SERVING environment), skew/drift excluded.
        label_dropped: whether the window carried the label (left out of the comparison).
        output_dir: holds ``production_stats.pb``, ``baseline_stats.pb``, ``previous_stats.pb``
            (with a previous window) and ``stats.html``.
    """

    rows: int
    baseline_rows: int
    skew: list[dict[str, Any]]
    drift: list[dict[str, Any]]
    anomalies: list[dict[str, str]]
    label_dropped: bool
    output_dir: Path
    previous_rows: int = 0

    @property
    def skewed(self) -> list[dict[str, Any]]:
        """Features whose skew against the training statistics is past their threshold."""
        return [d for d in self.skew if d["drifted"]]

    @property
    def drifted(self) -> list[dict[str, Any]]:
        """Features whose drift against the previous window is past their threshold."""
        return [d for d in self.drift if d["drifted"]]


def job_request(request: DriftRequest, work: Path) -> dict[str, Any]:
    """The JSON request of tfdv_drift_job.py, with remote tables staged under ``work``."""
    staging = work / "staged"
    document: dict[str, Any] = {
        "data": stage(request.data, staging),
        "data_name": request.data,
        "label_column": request.label_column,
        "output_dir": str(work / "out"),
        "schema_path": request.schema_path or None,
        "numeric_histogram": request.numeric_histogram,
        **request.options.job_fields(),
    }
    if request.baseline_statistics:
        document.update(
            baseline_statistics=request.baseline_statistics,
            baseline_name=request.baseline_name or request.baseline_statistics,
        )
    else:
        document.update(
            baseline_data=stage(request.baseline_data, staging),
            baseline_data_name=request.baseline_data,
            baseline_name=request.baseline_name or request.baseline_data,
        )
    if request.previous_statistics:
        document.update(
            previous_statistics=request.previous_statistics,
            previous_name=request.previous_name or request.previous_statistics,
        )
    return document


def run_drift_job(
    request: DriftRequest, work: Path, *, tfdv_python: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> DriftResult:
    """Run the skew and drift check in the TFDV environment and read its results.

    Raises:
        DataError: an input is unusable (missing, empty, not a table, bad baseline...).
        EnvironmentNotReady: no TFDV interpreter, or one missing a package.
        KfpCicdError: the job crashed or ran past ``timeout_s``.
    """
    python = tfdv_python or find_tfdv_python()
    work.mkdir(parents=True, exist_ok=True)
    request_path = work / "drift_request.json"
    request_path.write_text(json.dumps(job_request(request, work), indent=2), encoding="utf-8")
    out = work / "out"
    (out / "result.json").unlink(missing_ok=True)  # never read a previous run's result
    summary = read_result(out, run_job(DRIFT_JOB, request_path, python=python, timeout_s=timeout_s))
    return DriftResult(
        rows=summary["rows"],
        baseline_rows=summary["baseline_rows"],
        previous_rows=summary["previous_rows"],
        skew=json.loads((out / "skew.json").read_text(encoding="utf-8")),
        drift=json.loads((out / "drift.json").read_text(encoding="utf-8")),
        anomalies=json.loads((out / "anomalies.json").read_text(encoding="utf-8")),
        label_dropped=summary["label_dropped"],
        output_dir=out,
    )
