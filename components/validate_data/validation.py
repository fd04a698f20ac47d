"""Data validation with TFDV, from the main (kfp) environment.

TFDV cannot be imported here (its protobuf/pandas pins conflict with kfp 2.17), so
:func:`validate_datasets` writes a JSON request and runs ``tfdv_job.py`` with the validation
environment's interpreter (:func:`kfp_cicd.tfdv.environment.find_tfdv_python`) through the
library's job runner (:mod:`kfp_cicd.tfdv.runner`: progress streamed to our stderr, the process
group killed on timeout), then reads the files it wrote. :func:`run_validation_task` is the glue
the KFP component calls: it lays the results out as the component's output artifacts and fails the
task when the data has anomalies.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp_cicd.data.tables import check_table_file, file_fingerprint, read_table
from kfp_cicd.errors import DataError, KfpCicdError
from kfp_cicd.model.labels import BinaryLabels
from kfp_cicd.tfdv.environment import find_tfdv_python
from kfp_cicd.tfdv.jobs import JOB_SCRIPT
from kfp_cicd.tfdv.options import ValidationOptions
from kfp_cicd.tfdv.runner import JobRun, TfdvJob, read_result, run_job
from kfp_cicd.tfdv.staging import stage

log = logging.getLogger(__name__)

#: ``tfdv_job.py`` in the validation environment (validate, infer_schema, describe_schema modes).
VALIDATION_JOB = TfdvJob(
    JOB_SCRIPT, "validation", "Give it more time (timeout_s) or validate a smaller sample."
)

#: The curated schema of the default synthetic data set (TRAINING/SERVING environments).
CURATED_SCHEMA = Path(__file__).with_name("schemas") / "card_fraud.pbtxt"

#: How long one validation may run before it is killed (seconds).
DEFAULT_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Anomaly:
    """One problem TFDV found in one dataset.

    Attributes:
        dataset: ``"train"`` or ``"eval"``.
        feature: the feature (column) name; ``""`` for a dataset-level anomaly.
        kind: TFDV's ``AnomalyInfo.Type`` name, e.g. ``"SCHEMA_MISSING_COLUMN"``.
        description: TFDV's long description of the problem.
        short_description: TFDV's one-phrase summary.
    """

    dataset: str
    feature: str
    kind: str
    description: str
    short_description: str = ""
    explanation: str = ""

    def __str__(self) -> str:
        where = f"feature {self.feature!r}" if self.feature else "the dataset as a whole"
        meaning = f"{self.explanation}: " if self.explanation else ""
        return f"[{self.dataset}] {where}: {meaning}{self.description} ({self.kind})"


@dataclass(frozen=True)
class DriftMeasurement:
    """How far one feature of the training data moved from the baseline statistics.

    Attributes:
        feature: the feature's name.
        metric: ``"L_INFINITY"`` (categorical) or ``"JENSEN_SHANNON_DIVERGENCE"`` (numeric).
        value: the distance; ``None`` when TFDV could not compare (e.g. absent in the baseline).
        threshold: the threshold it was checked against.
        drifted: whether ``value`` is above ``threshold``.
    """

    feature: str
    metric: str
    value: float | None
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class ValidationResult:
    """What one validation found, and where it wrote its files.

    Attributes:
        row_counts: ``{"train": rows, "eval": rows}``.
        anomalies: every anomaly of both datasets against the schema.
        train_statistics: binary ``DatasetFeatureStatisticsList`` (``tfdv.load_stats_binary``).
        eval_statistics: the same for the evaluation data.
        schema: the text-format schema in its stored form: the given one, or one inferred from
            train with observed numeric ranges and category domains (the tolerances are applied
            to a working copy only).
        features: ``features.json``: label, feature names with kind and dtype, row counts.
        anomalies_file: ``anomalies.json``: the anomalies as a list of objects.
        report_html: the self-contained statistics view (train vs eval vs reference).
        data_fingerprint: ``"sha256:<hex>"`` of the training file's bytes.
        schema_inferred: whether the schema was inferred from the training data.
        reference_name: what the schema and baseline came from (``options.reference_name``);
            ``""``: none (first release).
        drift: one measurement per feature compared with the baseline (empty without one).
        summary_markdown: the Markdown summary (counts, anomalies, drift verdict).
        drift_markdown: the drift report in Markdown.
        drift_html: the drift report as HTML.
        processing: how each table's statistics were computed, e.g. ``{"train": "in_memory"}``.
        seconds: the TFDV job's time for this validation (statistics, anomalies, reports),
            TensorFlow's import excluded.
    """

    row_counts: dict[str, int]
    anomalies: list[Anomaly]
    train_statistics: Path
    eval_statistics: Path
    schema: Path
    features: Path
    anomalies_file: Path
    report_html: Path
    data_fingerprint: str
    schema_inferred: bool
    drift: list[DriftMeasurement] = field(default_factory=list)
    summary_markdown: Path | None = None
    drift_markdown: Path | None = None
    drift_html: Path | None = None
    processing: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    reference_name: str = ""

    @property
    def anomaly_count(self) -> int:
        """How many anomalies were found in both datasets together."""
        return len(self.anomalies)


class DataValidationFailed(KfpCicdError):
    """The data has anomalies against the schema; the message lists every one of them."""

    def __init__(self, anomalies: Sequence[Anomaly], report: str | Path | None = None) -> None:
        self.anomalies = tuple(anomalies)
        lines = [
            f"Data validation found {len(self.anomalies)} anomal{'y' if len(self.anomalies) == 1 else 'ies'}:"
        ]
        lines += [f"  - {anomaly}" for anomaly in self.anomalies]
        if report:
            lines.append(f"The statistics are in {report}.")
        lines.append(
            "Fix the data. If the change is intended: accept it for this run with "
            "accept_data_changes=drift, ranges and/or schema (recorded in the audit record), or review the "
            "schema change with `kfp-cicd schema diff`, write it with `kfp-cicd schema accept` and "
            "pass that file as schema_path."
        )
        super().__init__("\n".join(lines))


def raise_for_anomalies(
    result: ValidationResult, tolerate_kinds: Sequence[str] = (), report: str | Path | None = None
) -> None:
    """Raise :class:`DataValidationFailed` unless every anomaly's kind is in ``tolerate_kinds``;
    its message points at ``report`` (default: the result's own statistics page)."""
    blocking = [anomaly for anomaly in result.anomalies if anomaly.kind not in tolerate_kinds]
    if blocking:
        raise DataValidationFailed(blocking, report=report or result.report_html)


@dataclass(frozen=True)
class ValidationJob:
    """One validation of a batch (see :func:`validate_many`).

    Attributes:
        train_data, eval_data: the tables (local paths, ``file://``, ``gs://``, ``s3://`` URLs).
        label_column: the label's column; the training data must have it.
        output_dir: directory for the result files (created if missing).
        schema_path: a schema to validate against instead of inferring one; ``""``: infer.
        options: drift and scale settings.
    """

    train_data: str
    eval_data: str
    label_column: str
    output_dir: Path | str
    schema_path: str = ""
    options: ValidationOptions = field(default_factory=ValidationOptions)


def validate_datasets(
    train_data: str,
    eval_data: str,
    *,
    label_column: str,
    output_dir: Path | str,
    schema_path: str | None = None,
    options: ValidationOptions | None = None,
    tfdv_python: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ValidationResult:
    """Compute statistics of both tables with TFDV, and check both against a schema.

    The schema is ``schema_path`` (text format) if given, else inferred from the training data
    (observed ranges and category domains). Observed ranges are widened by
    ``options.range_tolerance`` and up to ``options.max_unknown_category_fraction`` of a
    categorical column may be unknown categories. With ``options.baseline_statistics`` the
    training statistics are also compared with that baseline (drift). Anomalies do not raise
    here: they are returned (see :func:`raise_for_anomalies`).

    Raises:
        DataError: an input file is missing, empty or unreadable, or lacks the label column.
        EnvironmentNotReady: no usable TFDV interpreter.
        KfpCicdError: the validation job crashed or timed out.
    """
    job = ValidationJob(
        train_data, eval_data, label_column, output_dir, schema_path or "", options or ValidationOptions()
    )
    (outcome,) = validate_many([job], tfdv_python=tfdv_python, timeout_s=timeout_s)
    if isinstance(outcome, KfpCicdError):
        raise outcome
    return outcome


def validate_many(
    jobs: Sequence[ValidationJob], *, tfdv_python: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[ValidationResult | DataError]:
    """Validate several datasets in one TFDV process, paying TensorFlow's import once.

    Returns one outcome per job, in order: its :class:`ValidationResult`, or the
    :class:`DataError` that says why its inputs are unusable (the other jobs still run).

    Raises:
        DataError: a job has an empty label column.
        EnvironmentNotReady: no usable TFDV interpreter.
        KfpCicdError: the validation process crashed or timed out.
    """
    for job in jobs:
        if not job.label_column:
            raise DataError("label_column is empty; name the column that holds the label")
    python = tfdv_python or find_tfdv_python()
    outcomes: list[ValidationResult | DataError | None] = [None] * len(jobs)
    with tempfile.TemporaryDirectory(prefix="validate_data-staged-") as staging:
        requests: list[dict[str, Any]] = []
        for index, job in enumerate(jobs):
            out = Path(job.output_dir)
            out.mkdir(parents=True, exist_ok=True)
            (out / "result.json").unlink(missing_ok=True)  # never read a previous run's result
            try:
                requests.append(_job_request(job, Path(staging) / str(index)))
            except DataError as error:
                outcomes[index] = error
                requests.append({})
        todo = [request for request in requests if request]
        if todo:
            request_path = Path(staging) / "request.json"
            request_path.write_text(json.dumps({"jobs": todo}, indent=2) + "\n", encoding="utf-8")
            run = run_job(VALIDATION_JOB, request_path, python=python, timeout_s=timeout_s)
    for index, (job, request) in enumerate(zip(jobs, requests, strict=True)):
        if request:
            outcomes[index] = _outcome(job, request, run)
    return [outcome for outcome in outcomes if outcome is not None]


def _job_request(job: ValidationJob, staging: Path) -> dict[str, Any]:
    """Stage the job's remote files locally and write its tfdv_job.py request object."""
    local_train = stage(str(job.train_data), staging / "train")
    fingerprint = file_fingerprint(local_train)  # also fails fast on a missing training file
    local_eval = stage(str(job.eval_data), staging / "eval")
    for local, shown, role in (
        (local_train, job.train_data, "training"),
        (local_eval, job.eval_data, "evaluation"),
    ):
        check_hostile_input(local, str(shown), role, job.options)
    baseline = job.options.baseline_statistics
    return {
        "train_data": local_train,
        "eval_data": local_eval,
        "train_name": str(job.train_data),
        "eval_name": str(job.eval_data),
        "label_column": job.label_column,
        "schema_path": job.schema_path or None,
        "output_dir": str(Path(job.output_dir).resolve()),
        "baseline_statistics": _stage_baseline(baseline, staging / "baseline") or None,
        "baseline_name": baseline or None,
        "fingerprint": fingerprint,
        **job.options.job_fields(),
    }


def check_hostile_input(local: str, shown: str, role: str, options: ValidationOptions) -> None:
    """Refuse a hostile table before the TFDV job reads it (:func:`check_table_file`).

    Encoding, NUL bytes, over-long lines, unnamed or duplicate columns, corrupted Parquet footers;
    and, when the statistics are computed in memory, a Parquet table too big for memory. The
    message names the ``role`` (``"training"``...) and ``shown`` (the URL a local copy was staged
    from).
    """
    in_memory = options.processing == "in_memory" or (
        options.processing == "auto" and not options.beam_options
    )
    try:
        check_table_file(local, memory_check=in_memory)
    except DataError as error:
        message = str(error).replace(local, shown)
        joint = " " if message.startswith(shown) else ": "  # "training data <file> is ..."
        raise DataError(f"{role} data{joint}{message}") from error


def _stage_baseline(location: str, staging_dir: Path) -> str:
    """A local copy of remote baseline statistics (a .pb file, or a directory's train_stats.pb)."""
    if not location or "://" not in location or location.startswith("file://"):
        return location.removeprefix("file://")
    if not location.endswith(".pb"):
        location = location.rstrip("/") + "/train_stats.pb"
    return stage(location, staging_dir)


def _outcome(job: ValidationJob, request: dict[str, Any], run: JobRun) -> ValidationResult | DataError:
    """Read one job's result files into a :class:`ValidationResult` (or its DataError)."""
    out = Path(request["output_dir"])
    try:
        summary = read_result(out, run)
    except DataError as error:
        return error
    return ValidationResult(
        row_counts={name: int(count) for name, count in summary["row_counts"].items()},
        anomalies=_read_anomalies(out / "anomalies.json"),
        train_statistics=out / "train_stats.pb",
        eval_statistics=out / "eval_stats.pb",
        schema=out / "schema.pbtxt",
        features=out / "features.json",
        anomalies_file=out / "anomalies.json",
        report_html=out / "stats.html",
        data_fingerprint=request["fingerprint"],
        schema_inferred=bool(summary.get("schema_inferred", not job.schema_path)),
        drift=[
            DriftMeasurement(**record)
            for record in json.loads((out / "drift.json").read_text(encoding="utf-8"))
        ],
        summary_markdown=out / "summary.md",
        drift_markdown=out / "drift.md",
        drift_html=out / "drift.html",
        processing=dict(summary.get("paths", {})),
        seconds=float(summary.get("seconds", 0.0)),
        reference_name=str(summary.get("reference_name", "")),
    )


def run_tfdv_request(jobs: Sequence[dict[str, Any]], python: str, timeout_s: float) -> None:
    """Run tfdv_job.py on raw job objects; raise the first job's DataError or a crash."""
    with tempfile.TemporaryDirectory(prefix="validate_data-request-") as work:
        request_path = Path(work) / "request.json"
        request_path.write_text(json.dumps({"jobs": list(jobs)}), encoding="utf-8")
        run = run_job(VALIDATION_JOB, request_path, python=python, timeout_s=timeout_s)
    for job in jobs:
        summary = read_result(Path(job["output_dir"]), run)
        if "error" in summary:
            raise DataError(summary["error"])


def _read_anomalies(path: Path) -> list[Anomaly]:
    """Parse anomalies.json (written by tfdv_job.py) into :class:`Anomaly` objects."""
    records = json.loads(path.read_text(encoding="utf-8"))
    return [
        Anomaly(
            dataset=record["dataset"],
            feature=record["feature"],
            kind=record["kind"],
            description=record["description"],
            short_description=record.get("short_description", ""),
            explanation=record.get("explanation", ""),
        )
        for record in records
    ]


def run_validation_task(
    train_data: str,
    eval_data: str,
    label_column: str,
    schema_path: str,
    *,
    statistics_dir: str,
    schema_dir: str,
    anomalies_file: str,
    report_file: str,
    summary_file: str | None = None,
    drift_report_file: str | None = None,
    drift_html_file: str | None = None,
    artifact_metadata: Mapping[str, MutableMapping[str, Any]] | None = None,
    tolerate_kinds: Sequence[str] = (),
    options: ValidationOptions | None = None,
    tfdv_python: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    positive_label: str = "",
) -> tuple[int, int, int, str]:
    """The validate_data component's body: validate, publish the artifacts, fail on anomalies.

    The label comes first: both tables' label columns must hold the same two classes
    (:func:`label_classes`), else the task fails before TFDV runs. Every output is written before
    the anomaly check, so a failed task still shows its report.

    Args:
        train_data, eval_data, label_column: as in :func:`validate_datasets`.
        schema_path: the schema to validate against; ``""`` infers one from the training data.
        statistics_dir: directory to create with ``train_stats.pb`` and ``eval_stats.pb``.
        schema_dir: directory to create with ``schema.pbtxt`` and ``features.json``.
        anomalies_file: file to write ``anomalies.json`` to.
        report_file: file to write the statistics HTML to.
        summary_file: file to write the Markdown summary to (optional).
        drift_report_file: file to write the Markdown drift report to (optional).
        drift_html_file: file to write the HTML drift report to (optional).
        artifact_metadata: the artifacts' ``metadata`` dicts by output name (``statistics``,
            ``schema``, ``anomalies``, ``report``, ``summary``, ``drift_report``); each present
            one is updated.
        tolerate_kinds: anomaly kinds that do not fail the task.
        options: drift (baseline, thresholds) and scale (processing, Beam, sampling) settings.
        tfdv_python, timeout_s: as in :func:`validate_datasets`.
        positive_label: the label value that is the positive class; ``""``: the default rule of
            :class:`~kfp_cicd.model.labels.BinaryLabels`.

    Returns:
        ``(train_rows, eval_rows, anomaly_count, data_fingerprint)``.

    Raises:
        DataValidationFailed: the data has anomalies not tolerated (after the outputs are written).
    """
    classes = label_classes(train_data, eval_data, label_column, positive_label)
    with tempfile.TemporaryDirectory(prefix="validate_data-") as work:
        result = validate_datasets(
            train_data,
            eval_data,
            label_column=label_column,
            output_dir=work,
            schema_path=schema_path or None,
            options=options,
            tfdv_python=tfdv_python,
            timeout_s=timeout_s,
        )
        record_label_classes(result.features, classes)
        copies = [
            (result.train_statistics, Path(statistics_dir) / "train_stats.pb"),
            (result.eval_statistics, Path(statistics_dir) / "eval_stats.pb"),
            (result.schema, Path(schema_dir) / "schema.pbtxt"),
            (result.features, Path(schema_dir) / "features.json"),
            (result.anomalies_file, Path(anomalies_file)),
            (result.report_html, Path(report_file)),
        ]
        copies += [
            (source, Path(target))
            for source, target in (
                (result.summary_markdown, summary_file),
                (result.drift_markdown, drift_report_file),
                (result.drift_html, drift_html_file),
            )
            if source is not None and target
        ]
        _copy_all(copies)
        metadata = artifact_metadata_for(result, tolerate_kinds)
    for name, values in metadata.items():
        if artifact_metadata is not None and name in artifact_metadata:
            artifact_metadata[name].update(values)
    raise_for_anomalies(result, tolerate_kinds, report=report_file)  # the copy outlives this task
    return (
        result.row_counts["train"],
        result.row_counts["eval"],
        result.anomaly_count,
        result.data_fingerprint,
    )


def label_classes(
    train_data: str, eval_data: str, label_column: str, positive_label: str = ""
) -> BinaryLabels:
    """The label's two classes from the training data; the holdout may hold no others.

    Only the label column is read. Raises :class:`DataError` naming the column and its values
    when it is missing, has gaps, or does not hold exactly two classes.
    """
    if not label_column.strip():
        raise DataError("label_column is empty; name the column that holds the label")
    classes = BinaryLabels.infer(
        read_table(train_data, columns=[label_column])[label_column], label_column, positive_label
    )
    try:
        classes.encode_frame(read_table(eval_data, columns=[label_column]))
    except DataError as error:
        raise DataError(f"evaluation data: {error}") from error
    log.info(
        "label %r: positive class %r, negative %r (%s)",
        label_column,
        classes.positive,
        classes.negative,
        classes.rule,
    )
    return classes


def record_label_classes(features_file: Path, classes: BinaryLabels) -> None:
    """Add the label's classes to ``features.json`` (training and evaluation read them there)."""
    features = json.loads(features_file.read_text(encoding="utf-8"))
    features["classes"] = classes.to_dict()
    features_file.write_text(json.dumps(features, indent=2), encoding="utf-8")


def _copy_all(copies: Sequence[tuple[Path, Path]]) -> None:
    """Copy each result file to its artifact path, creating parent directories."""
    for source, target in copies:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def artifact_metadata_for(
    result: ValidationResult, tolerate_kinds: Sequence[str] = ()
) -> dict[str, dict[str, Any]]:
    """The metadata each output artifact carries (shown in the KFP UI and in ML Metadata)."""
    counts = {"train_rows": result.row_counts["train"], "eval_rows": result.row_counts["eval"]}
    features = json.loads(result.features.read_text(encoding="utf-8"))
    drifted = sorted(d.feature for d in result.drift if d.drifted)
    return {
        "statistics": {
            **counts,
            "format": "DatasetFeatureStatisticsList, binary (tfdv.load_stats_binary)",
            "data_fingerprint": result.data_fingerprint,
            "processing": result.processing,
        },
        "schema": {
            "label": features["label"],
            "feature_count": len(features["features"]),
            "inferred": result.schema_inferred,
            "reference": result.reference_name,
        },
        "anomalies": {
            "anomaly_count": result.anomaly_count,
            "kinds": sorted({anomaly.kind for anomaly in result.anomalies}),
            "tolerated_kinds": list(tolerate_kinds),
        },
        "report": {**counts, "anomaly_count": result.anomaly_count},
        "summary": {**counts, "anomaly_count": result.anomaly_count},
        "drift_report": {
            "checked": bool(result.drift),
            "features_compared": len(result.drift),
            "drifted_features": drifted,
        },
    }
