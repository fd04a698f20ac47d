"""Run TFDV on input tables; the validation environment's side of the job.

Run by file path with the TFDV interpreter (see ``kfp_cicd.tfdv.environment.find_tfdv_python``)::

    .venv-tfdv/bin/python kfp_cicd/tfdv/jobs/tfdv_job.py request.json

This file and its sibling ``tfdv_*.py`` modules import only the standard library and what the
validation environment has (TFDV, tensorflow_metadata, Beam, pyarrow, numpy): they ship inside the
``kfp_cicd`` package but are *not* run as part of it, since its environment (kfp 2.17, protobuf 6)
cannot load TFDV.

The request is one JSON job, or ``{"jobs": [job, ...]}``: a batch validated in this one process,
so TensorFlow's 10-20 s import is paid once. A job::

    {"mode": "validate" (default) | "infer_schema" | "describe_schema",
     "output_dir": "where to write the results",
     # validate:
     "train_data", "eval_data": local .csv/.csv.gz/.parquet, "label_column": "default",
     "train_name", "eval_name": how messages name the files (e.g. the URL of a staged copy),
     "schema_path": null or a text-format schema to validate against (else inferred),
     "baseline_statistics": null or train_stats.pb / a statistics directory to check drift against,
     "baseline_name": how messages name it,
     "drift": {"default": 0.1, "features": {"amount": 0.05}},  # thresholds; <0 or null: unchecked
     "contract": {"range_tolerance": 1.0, "max_unknown_category_fraction": 0.01},
     "reference_name": "champion fraud-ab12cd version 3",  # "" (default): none, first release
     "scale": {"processing": "auto"|"in_memory"|"beam", "beam_threshold_bytes": int,
               "beam_options": "--runner=DataflowRunner ...", "sample_rate": 1.0, "seed": 0}
     # infer_schema: "data", "label_column", "scale"; describe_schema: "schema_path";
     # evolve_schema: "schema_path" (the reference), "data", "label_column", "scale"}

Files a validate job writes into ``output_dir``: ``train_stats.pb``, ``eval_stats.pb`` (binary
``DatasetFeatureStatisticsList``, read with ``tfdv.load_stats_binary``); ``schema.pbtxt`` (the
schema in its stored form: the given one, or one inferred with observed ranges and category
domains, see ``tfdv_contract``; the tolerances are applied to a working copy only, with
TRAINING/SERVING environments); ``anomalies.json`` (``[{dataset, feature, kind,
short_description, description, explanation}]``); ``drift.json`` (``[{feature, metric, value,
threshold, drifted}]``); ``features.json`` (label, non-label features with kind and dtype, row
counts); ``stats.html`` (a self-contained statistics view: no network, no external scripts);
``summary.md``; ``drift.md``, ``drift.html``; ``result.json``: ``{row_counts, anomaly_count,
schema_inferred, reference_name, processing, drift_checked, seconds}`` or ``{"error": ...}``.
``infer_schema`` writes ``schema.pbtxt`` (with observed ranges) and ``result.json``;
``describe_schema`` writes ``schema.json`` and ``result.json``; ``evolve_schema`` writes
``schema.pbtxt`` (the reference changed to accept the data), ``changes.json`` (``[{feature, kind,
detail, old, new}]``) and ``result.json``.

Exit codes: 0 every job done (each job's result.json says whether its inputs were usable);
2 the request itself is unusable (reason on stderr); anything else is a crash (traceback on
stderr). Progress lines go to stderr. Input files are checked before TFDV is imported, so a
batch of broken files fails in a second rather than after TensorFlow's import.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the tfdv_*.py modules beside this one

from tfdv_inputs import InputError, TableInput, check_label, inspect_table

EXIT_INPUT_ERROR = 2
MODES = ("validate", "infer_schema", "describe_schema", "evolve_schema")
_REQUIRED = {
    "validate": ("train_data", "eval_data", "label_column", "output_dir"),
    "infer_schema": ("data", "label_column", "output_dir"),
    "describe_schema": ("schema_path", "output_dir"),
    "evolve_schema": ("schema_path", "data", "label_column", "output_dir"),
}
# Schema feature types (schema_pb2.FeatureType names) -> features.json kind and dtype.
_KIND_BY_TYPE = {"INT": ("numeric", "int"), "FLOAT": ("numeric", "float"), "BYTES": ("categorical", "string")}

_STARTED = time.monotonic()


def log(message: str) -> None:
    """Write one progress line to stderr, stamped with seconds since start."""
    print(f"[tfdv_job {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def write_json(path: Path, document: Any) -> None:
    """Write ``document`` as indented UTF-8 JSON."""
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


# --- request -----------------------------------------------------------------------------------


def read_jobs(path: Path) -> list[dict[str, Any]]:
    """The request's jobs, each checked for its mode's keys; InputError naming what is wrong."""
    try:
        request = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the request file {path}: {error}") from error
    jobs = request.get("jobs") if isinstance(request, dict) and "jobs" in request else [request]
    if not isinstance(jobs, list) or not jobs:
        raise InputError(f'request file {path} must hold a JSON object or {{"jobs": [...]}}')
    for job in jobs:
        if not isinstance(job, dict):
            raise InputError(f"request file {path}: every job must be a JSON object")
        mode = job.setdefault("mode", "validate")
        if mode not in MODES:
            raise InputError(f"request file {path}: unknown mode {mode!r}; use one of {MODES}")
        missing = [key for key in _REQUIRED[mode] if not isinstance(job.get(key), str) or not job[key]]
        if missing:
            raise InputError(f"request file {path} lacks non-empty string(s): {', '.join(missing)}")
    return jobs


# --- validate ----------------------------------------------------------------------------------


def precheck(job: dict[str, Any]) -> tuple[TableInput, TableInput]:
    """The quick checks of a validate job's inputs, before TFDV is imported."""
    from tfdv_checks import load_schema
    from tfdv_statistics import ScaleOptions

    train = inspect_table(job["train_data"], "training", job.get("train_name"))
    check_label(train, job["label_column"])
    evaluation = inspect_table(job["eval_data"], "evaluation", job.get("eval_name"))
    if job.get("schema_path"):
        load_schema(job["schema_path"])
    ScaleOptions.from_request(job)
    drift_thresholds(job)
    contract_settings(job)
    return train, evaluation


def drift_thresholds(job: dict[str, Any]) -> tuple[dict[str, float], float | None]:
    """``(per-feature thresholds, default)`` of the job's ``drift`` object, checked."""
    drift = job.get("drift") or {}
    try:
        features = {str(k): float(v) for k, v in (drift.get("features") or {}).items()}
        default = drift.get("default")
        return features, None if default is None else float(default)
    except (TypeError, ValueError, AttributeError) as error:
        raise InputError(f"drift thresholds must be numbers: {error}") from error


def contract_settings(job: dict[str, Any]) -> tuple[float, float]:
    """``(range_tolerance, max_unknown_category_fraction)`` of the job's ``contract`` object."""
    from tfdv_contract import DEFAULT_MAX_UNKNOWN_CATEGORY_FRACTION, DEFAULT_RANGE_TOLERANCE

    contract = job.get("contract") or {}
    try:
        tolerance = float(contract.get("range_tolerance", DEFAULT_RANGE_TOLERANCE))
        unknown = float(contract.get("max_unknown_category_fraction", DEFAULT_MAX_UNKNOWN_CATEGORY_FRACTION))
    except (TypeError, ValueError, AttributeError) as error:
        raise InputError(f"contract settings must be numbers: {error}") from error
    if not (tolerance >= 0 and tolerance != float("inf")):
        raise InputError(f"range_tolerance must be a non-negative number, not {tolerance}")
    if not 0.0 <= unknown <= 1.0:
        raise InputError(f"max_unknown_category_fraction must be in [0, 1], not {unknown}")
    return tolerance, unknown


def validate(job: dict[str, Any], tables: tuple[TableInput, TableInput], out: Path) -> dict[str, Any]:
    """Statistics, schema, anomalies and drift of one job; write every output file."""
    import tensorflow_data_validation as tfdv
    from tfdv_checks import (
        TRAINING,
        anomaly_records,
        configure_drift,
        drift_measurements,
        load_baseline,
        load_or_infer_schema,
    )
    from tfdv_checks import validate as check
    from tfdv_contract import working_schema
    from tfdv_reports import (
        drift_html,
        drift_markdown,
        reference_note,
        statistics_view_html,
        summary_markdown,
    )
    from tfdv_statistics import ScaleOptions, compute_statistics

    started = time.monotonic()
    label, scale = job["label_column"], ScaleOptions.from_request(job)
    baseline = None
    if job.get("baseline_statistics"):
        baseline = load_baseline(
            job["baseline_statistics"], job.get("baseline_name") or job["baseline_statistics"]
        )
    stats, processing = {}, {}
    for name, table in zip(("train", "eval"), tables, strict=True):
        stats[name], processing[name] = compute_statistics(table, scale, log)
        log(
            f"computed {table.label} statistics ({processing[name]}): "
            f"{stats[name].datasets[0].num_examples} rows"
        )
    schema = load_or_infer_schema(job.get("schema_path"), stats["train"], label)
    configured = {}
    if baseline is not None:
        configured = configure_drift(schema, *drift_thresholds(job))
    working = working_schema(schema, *contract_settings(job))  # tolerances applied; not written
    train_anomalies = check(stats["train"], working, TRAINING, baseline)
    records = anomaly_records(train_anomalies, "train")
    records += anomaly_records(check(stats["eval"], working, TRAINING), "eval")
    drift = drift_measurements(train_anomalies, configured)
    log(
        f"found {len(records)} anomalies"
        + "".join(f"\n    [{r['dataset']}] {r['feature'] or '(data set)'}: {r['kind']}" for r in records)
    )

    row_counts = {name: int(s.datasets[0].num_examples) for name, s in stats.items()}
    path_text = ", ".join(f"{name}: {way.replace('_', ' ')}" for name, way in processing.items())
    summary = {
        "row_counts": row_counts,
        "anomaly_count": len(records),
        "schema_inferred": not job.get("schema_path"),
        "reference_name": str(job.get("reference_name") or ""),
        "processing": path_text,
        "paths": processing,
        "drift_checked": baseline is not None,
        "seconds": round(time.monotonic() - started, 3),
    }
    for name, s in stats.items():
        (out / f"{name}_stats.pb").write_bytes(s.SerializeToString())
    tfdv.write_schema_text(schema, str(out / "schema.pbtxt"))
    write_json(out / "anomalies.json", records)
    write_json(out / "drift.json", drift)
    write_json(out / "features.json", feature_summary(schema, label, row_counts))
    baseline_name = (job.get("baseline_name") or job["baseline_statistics"]) if baseline else None
    note = reference_note(summary["reference_name"], summary["schema_inferred"])
    datasets = [*stats.items(), *([("reference", baseline)] if baseline is not None else [])]
    counts = "; ".join(f"{name} rows: {count}" for name, count in row_counts.items())
    (out / "stats.html").write_text(
        statistics_view_html(
            f"Data validation ({counts}; statistics computed {path_text})",
            datasets,
            working,
            records,
            drift,
            note,
        ),
        "utf-8",
    )
    (out / "summary.md").write_text(summary_markdown(summary, records, drift), "utf-8")
    (out / "drift.md").write_text(drift_markdown(drift, baseline_name), "utf-8")
    (out / "drift.html").write_text(drift_html(drift, baseline_name, note), "utf-8")
    return summary


def feature_summary(schema: Any, label: str, row_counts: dict[str, int]) -> dict[str, Any]:
    """The ``features.json`` document: the schema's non-label features, their kind and dtype."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    features = []
    for feature in schema.feature:
        type_name = schema_pb2.FeatureType.Name(feature.type)
        if feature.name == label or type_name not in _KIND_BY_TYPE:
            continue
        kind, dtype = _KIND_BY_TYPE[type_name]
        features.append({"name": feature.name, "kind": kind, "dtype": dtype})
    return {"label": label, "features": features, "row_counts": row_counts}


# --- schema lifecycle --------------------------------------------------------------------------


def infer_schema(job: dict[str, Any], table: TableInput, out: Path) -> dict[str, Any]:
    """Infer a schema (observed ranges, category domains, TRAINING/SERVING environments) from
    one table; write schema.pbtxt."""
    import tensorflow_data_validation as tfdv
    from tfdv_checks import load_or_infer_schema
    from tfdv_statistics import ScaleOptions, compute_statistics

    stats, _ = compute_statistics(table, ScaleOptions.from_request(job), log)
    schema = load_or_infer_schema(None, stats, job["label_column"])
    tfdv.write_schema_text(schema, str(out / "schema.pbtxt"))
    return {"features": len(schema.feature), "rows": int(stats.datasets[0].num_examples)}


def precheck_evolve(job: dict[str, Any]) -> TableInput:
    """The quick checks of an evolve_schema job's inputs, before TFDV is imported."""
    from tfdv_checks import load_schema

    load_schema(job["schema_path"])
    return inspect_table(job["data"], "new", job.get("data_name"))


def describe_schema(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write ``schema.json``: each feature's type, presence, domain and environments."""
    from google.protobuf import json_format
    from tfdv_checks import load_schema

    schema = load_schema(job["schema_path"])
    document = json_format.MessageToDict(schema, preserving_proto_field_name=True)
    write_json(out / "schema.json", document)
    return {"features": len(schema.feature)}


def evolve_schema(job: dict[str, Any], table: TableInput, out: Path) -> dict[str, Any]:
    """The reference schema changed to accept one table's data: write schema.pbtxt, changes.json."""
    import tensorflow_data_validation as tfdv
    from tfdv_checks import add_environments, load_schema
    from tfdv_contract import evolve_schema as evolve
    from tfdv_statistics import ScaleOptions, compute_statistics

    schema = load_schema(job["schema_path"])
    stats, _ = compute_statistics(table, ScaleOptions.from_request(job), log)
    evolved, changes = evolve(schema, stats)
    add_environments(evolved, job["label_column"])
    tfdv.write_schema_text(evolved, str(out / "schema.pbtxt"))
    write_json(out / "changes.json", changes)
    log(
        f"{len(changes)} schema change(s)"
        + "".join(f"\n    {c['feature']}: {c['kind']}: {c['detail']}" for c in changes)
    )
    return {"changes": len(changes), "features": len(evolved.feature)}


# --- the batch ---------------------------------------------------------------------------------


def run_jobs(jobs: list[dict[str, Any]]) -> None:
    """Check every job's inputs first (fast), then run the usable ones; one result.json each."""
    checked: list[tuple[dict[str, Any], Path, Any]] = []
    for job in jobs:
        out = Path(job["output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        try:
            if job["mode"] == "validate":
                checked.append((job, out, precheck(job)))
            elif job["mode"] == "infer_schema":
                checked.append((job, out, inspect_table(job["data"], "schema", job.get("data_name"))))
            elif job["mode"] == "evolve_schema":
                checked.append((job, out, precheck_evolve(job)))
            else:
                checked.append((job, out, None))
        except InputError as error:
            log(f"error: {error}")
            write_json(out / "result.json", {"error": str(error)})
    if any(job["mode"] != "describe_schema" for job, _, _ in checked):
        from tfdv_statistics import reading_meanwhile

        with reading_meanwhile((job, inputs) for job, _, inputs in checked):  # the tables, meanwhile
            log("importing TensorFlow Data Validation")
            import tensorflow_data_validation  # noqa: F401
    for job, out, inputs in checked:
        try:
            if job["mode"] == "validate":
                summary = validate(job, inputs, out)
            elif job["mode"] == "infer_schema":
                summary = infer_schema(job, inputs, out)
            elif job["mode"] == "evolve_schema":
                summary = evolve_schema(job, inputs, out)
            else:
                summary = describe_schema(job, out)
        except InputError as error:
            log(f"error: {error}")
            summary = {"error": str(error)}
        write_json(out / "result.json", summary)
        log(f"wrote the results to {out}")


def main(argv: list[str]) -> int:
    """Entry point: ``tfdv_job.py request.json``; returns the process exit code."""
    if len(argv) != 2:
        print(f"usage: {argv[0]} request.json", file=sys.stderr)
        return EXIT_INPUT_ERROR
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ chatter down
    # google-api-core warns at import about Python 3.11's end of life (2027): noise in every run.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
    try:
        jobs = read_jobs(Path(argv[1]))
    except InputError as error:
        log(f"error: {error}")
        return EXIT_INPUT_ERROR
    run_jobs(jobs)
    if "tensorflow" in sys.modules:
        # Every result file is written and closed; TensorFlow's teardown would add a second or
        # more before the caller sees the exit.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
