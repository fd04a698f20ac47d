"""Run TFDV on a training and an evaluation table; the validation environment's side of the job.

Run by file path with the TFDV interpreter (see ``tfdv_environment.find_tfdv_python``)::

    .venv-tfdv/bin/python components/validate_data/tfdv_job.py request.json

This file must import only the standard library and what the validation environment has
(tensorflow_data_validation, tensorflow_metadata, pandas, pyarrow): it is *not* run inside the
``kfp_cicd`` package, whose environment (kfp 2.17, protobuf 6) cannot load TFDV.

The request is a JSON object::

    {"train_data": "...csv|.csv.gz|.parquet", "eval_data": "...", "label_column": "label",
     "schema_path": null or "schema.pbtxt to validate against instead of inferring one",
     "output_dir": "where to write the results",
     "train_name", "eval_name": optional, how error messages name the files (e.g. the URL a
     local copy was staged from)}

Files written into ``output_dir``:

* ``train_stats.pb``, ``eval_stats.pb``: ``DatasetFeatureStatisticsList`` protos, binary
  (``SerializeToString``), the format TFX's StatisticsGen writes; read them back with
  ``tfdv.load_stats_binary(path)``.
* ``schema.pbtxt``: the schema inferred from the training statistics (``tfdv.infer_schema``), or
  the given schema, in text format (``tfdv.load_schema_text``).
* ``anomalies.json``: a list of ``{dataset, feature, kind, short_description, description}``, one
  per anomaly reason TFDV reports for the train and the eval statistics against the schema;
  ``kind`` is the ``AnomalyInfo.Type`` name, e.g. ``SCHEMA_MISSING_COLUMN``. Dataset-level
  anomalies have ``feature`` ``""``.
* ``stats.html``: TFDV's Facets view comparing train against eval.
* ``features.json``: ``{"label", "features": [{"name", "kind", "dtype"}], "row_counts"}``, the
  schema's features except the label; INT and FLOAT are numeric, BYTES categorical.
* ``result.json``: ``{"row_counts", "anomaly_count", "schema_inferred"}``, or ``{"error": ...}``.

Exit codes: 0 done (anomalies or not); 2 the request or an input file is unusable, with the reason
in ``result.json["error"]`` (or only on stderr when the request itself cannot be read); anything
else is a crash (traceback on stderr). Progress lines go to stderr.

The input files are read with pandas *before* TFDV is imported, so a missing or broken file fails
in a second rather than after TensorFlow's ~20 s import.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the heavy modules are imported lazily, after the inputs are known to be good
    import pandas as pd
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

EXIT_INPUT_ERROR = 2
CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
_SNIFF_BYTES = 8192
_REQUIRED_KEYS = ("train_data", "eval_data", "label_column", "output_dir")

# Schema feature types (schema_pb2.FeatureType names) -> features.json kind and dtype.
_KIND_BY_TYPE = {"INT": ("numeric", "int"), "FLOAT": ("numeric", "float"),
                 "BYTES": ("categorical", "string")}

_STARTED = time.monotonic()


class InputError(Exception):
    """The request or an input file is unusable; the message names the file and the fix."""


def log(message: str) -> None:
    """Write one progress line to stderr, stamped with seconds since start."""
    print(f"[tfdv_job {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr,
          flush=True)


# --- request and inputs ------------------------------------------------------------------------


def read_request(path: Path) -> dict[str, Any]:
    """Load and check the JSON request; raise InputError naming what is wrong."""
    try:
        request = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the request file {path}: {error}") from error
    if not isinstance(request, dict):
        raise InputError(f"request file {path} must hold a JSON object")
    missing = [key for key in _REQUIRED_KEYS if not isinstance(request.get(key), str)
               or not request[key]]
    if missing:
        raise InputError(f"request file {path} lacks non-empty string(s): {', '.join(missing)}")
    return request


def _looks_binary(path: Path) -> bool:
    """True when the file's first bytes hold a NUL byte: no CSV text has one."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as stream:
            return b"\x00" in stream.read(_SNIFF_BYTES)
    except OSError:  # e.g. a .gz that is not gzip: let the reader report it
        return False


def _read_csv(path: Path, role: str, shown: str) -> pd.DataFrame:
    """Read a UTF-8 CSV (optionally gzipped) with a header row."""
    import pandas as pd

    if _looks_binary(path):
        raise InputError(f"{role} data {shown} is a binary file, not CSV text. Export the table "
                         "as UTF-8 CSV with a header row, or as Parquet (.parquet).")
    try:
        return pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{role} data {shown} is not UTF-8 text (byte {error.start}: {error.reason}). "
            "Re-save the file as UTF-8 CSV.") from error
    except pd.errors.EmptyDataError as error:
        raise InputError(f"{role} data {shown} has no header row and no data (it is empty or "
                         "blank). Write the CSV with a header row and at least one row.") from error
    except pd.errors.ParserError as error:
        raise InputError(f"{role} data {shown} is not well-formed CSV: {error}") from error
    except (OSError, ValueError) as error:
        raise InputError(f"{role} data {shown} could not be read as CSV: {error}") from error


def _read_parquet(path: Path, role: str, shown: str) -> pd.DataFrame:
    """Read a Parquet file."""
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as error:
        raise InputError(f"{role} data {shown} could not be read as Parquet: {error}") from error


def load_table(path_text: str, role: str, name: str | None = None) -> pd.DataFrame:
    """Load one input table (CSV, gzipped CSV or Parquet, by suffix) and check it has rows.

    Args:
        path_text: the file's local path.
        role: ``"training"`` or ``"evaluation"``, used in error messages.
        name: how messages name the file (the original URL of a staged copy); default the path.

    Raises:
        InputError: the file is missing, empty, of an unknown suffix, unreadable or has no rows.
    """
    path = Path(path_text)
    shown = name or path_text
    if not path.exists():
        raise InputError(f"{role} data {shown} does not exist. Check the path.")
    if not path.is_file():
        raise InputError(f"{role} data {shown} is not a file.")
    if path.stat().st_size == 0:
        raise InputError(f"{role} data {shown} is empty (0 bytes). Write the CSV with a header "
                         "row and at least one row.")
    lowered = path.name.lower()
    if lowered.endswith(CSV_SUFFIXES):
        frame = _read_csv(path, role, shown)
    elif lowered.endswith(PARQUET_SUFFIXES):
        frame = _read_parquet(path, role, shown)
    else:
        raise InputError(f"{role} data {shown} has an unsupported suffix; use one of "
                         f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}.")
    if frame.shape[1] == 0:
        raise InputError(f"{role} data {shown} has no columns.")
    if frame.shape[0] == 0:
        raise InputError(f"{role} data {shown} has a header but no data rows. Write at least "
                         "one row.")
    frame.columns = [str(column) for column in frame.columns]  # TFDV needs string feature names
    log(f"read {role} data {shown}: {frame.shape[0]} rows, {frame.shape[1]} columns")
    return frame


def check_label(frame: pd.DataFrame, label: str, path: str) -> None:
    """The training data must have the label column: without it there is nothing to train on."""
    if label not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        more = ", ..." if len(frame.columns) > 20 else ""
        raise InputError(f"training data {path} has no label column {label!r} (its columns: "
                         f"{columns}{more}). Pass the right label_column or fix the file.")


# --- TFDV ----------------------------------------------------------------------------------------


def compute_statistics(frame: pd.DataFrame, role: str,
                       path: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Compute TFDV statistics of one table; Arrow conversion errors become InputError."""
    import pyarrow as pa
    import tensorflow_data_validation as tfdv

    try:
        stats = tfdv.generate_statistics_from_dataframe(frame)
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise InputError(f"{role} data {path}: TFDV cannot compute statistics of it: "
                         f"{error}") from error
    log(f"computed {role} statistics: {len(stats.datasets[0].features)} features")
    return stats


def load_or_infer_schema(schema_path: str | None,
                         train_stats: statistics_pb2.DatasetFeatureStatisticsList,
                         ) -> schema_pb2.Schema:
    """The given text-format schema, or one inferred from the training statistics."""
    import tensorflow_data_validation as tfdv
    from google.protobuf import text_format

    if not schema_path:
        schema = tfdv.infer_schema(train_stats)
        log(f"inferred a schema of {len(schema.feature)} features from the training statistics")
        return schema
    path = Path(schema_path)
    try:
        schema = tfdv.load_schema_text(str(path))
    except (OSError, UnicodeDecodeError, text_format.ParseError) as error:
        raise InputError(f"schema {path} is not a text-format TFDV Schema: {error}") from error
    log(f"loaded the schema {path}: {len(schema.feature)} features")
    return schema


def check_schema_path(schema_path: str | None) -> None:
    """A given schema must exist; checked before TFDV's slow import."""
    if schema_path and not Path(schema_path).is_file():
        raise InputError(f"schema {schema_path} does not exist. Pass an existing schema .pbtxt, "
                         "or an empty schema_path to infer one from the training data.")


def anomaly_records(anomalies: anomalies_pb2.Anomalies, dataset: str) -> list[dict[str, str]]:
    """Flatten TFDV's Anomalies proto: one record per reason, per feature (and dataset-level)."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    type_name = anomalies_pb2.AnomalyInfo.Type.Name
    infos = sorted(anomalies.anomaly_info.items())
    if anomalies.HasField("dataset_anomaly_info"):
        infos.append(("", anomalies.dataset_anomaly_info))
    records = []
    for feature, info in infos:
        reasons = list(info.reason) or [None]
        for reason in reasons:
            records.append({
                "dataset": dataset,
                "feature": feature,
                "kind": type_name(reason.type) if reason else "UNKNOWN_TYPE",
                "short_description": (reason.short_description if reason
                                      else info.short_description).strip(),
                "description": (reason.description if reason else info.description).strip(),
            })
    return records


def feature_summary(schema: schema_pb2.Schema, label: str,
                    row_counts: dict[str, int]) -> dict[str, Any]:
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


def statistics_html(train_stats: statistics_pb2.DatasetFeatureStatisticsList,
                    eval_stats: statistics_pb2.DatasetFeatureStatisticsList,
                    row_counts: dict[str, int], records: list[dict[str, str]]) -> str:
    """A standalone HTML page: row counts and anomalies, then TFDV's Facets view of train vs eval.

    ``tfdv.get_statistics_html`` returns only an iframe fragment whose Facets scripts load from
    public CDNs; the plain summary above it stays readable where those cannot be reached.
    """
    import tensorflow_data_validation as tfdv

    facets = tfdv.get_statistics_html(train_stats, eval_stats, lhs_name="train", rhs_name="eval")
    rows = "".join(
        f"<tr><td>{html.escape(r['dataset'])}</td><td>{html.escape(r['feature'] or '(dataset)')}"
        f"</td><td>{html.escape(r['kind'])}</td><td>{html.escape(r['description'])}</td></tr>"
        for r in records)
    anomalies = (f"<table border='1' cellpadding='4'><tr><th>dataset</th><th>feature</th>"
                 f"<th>kind</th><th>description</th></tr>{rows}</table>" if records
                 else "<p>No anomalies: both datasets match the schema.</p>")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Data validation</title></head>"
        "<body style='font-family: sans-serif'><h2>Data validation</h2>"
        f"<p>Training rows: {row_counts['train']}; evaluation rows: {row_counts['eval']}; "
        f"anomalies: {len(records)}.</p>{anomalies}<h3>Statistics: train vs eval</h3>"
        f"{facets}</body></html>\n")


# --- the job -------------------------------------------------------------------------------------


def write_json(path: Path, document: Any) -> None:
    """Write ``document`` as indented UTF-8 JSON."""
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def run(request: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    """Validate both tables and write every output file; return the ``result.json`` summary."""
    label = request["label_column"]
    train_name = request.get("train_name") or request["train_data"]
    eval_name = request.get("eval_name") or request["eval_data"]
    train = load_table(request["train_data"], "training", train_name)
    check_label(train, label, train_name)
    evaluation = load_table(request["eval_data"], "evaluation", eval_name)
    check_schema_path(request.get("schema_path"))
    row_counts = {"train": int(train.shape[0]), "eval": int(evaluation.shape[0])}

    log("importing TensorFlow Data Validation")
    import tensorflow_data_validation as tfdv

    train_stats = compute_statistics(train, "training", train_name)
    eval_stats = compute_statistics(evaluation, "evaluation", eval_name)
    schema = load_or_infer_schema(request.get("schema_path"), train_stats)

    records = anomaly_records(tfdv.validate_statistics(train_stats, schema), "train")
    records += anomaly_records(tfdv.validate_statistics(eval_stats, schema), "eval")
    log(f"found {len(records)} anomalies" + "".join(
        f"\n    [{r['dataset']}] {r['feature'] or '(dataset)'}: {r['kind']}" for r in records))

    (output_dir / "train_stats.pb").write_bytes(train_stats.SerializeToString())
    (output_dir / "eval_stats.pb").write_bytes(eval_stats.SerializeToString())
    tfdv.write_schema_text(schema, str(output_dir / "schema.pbtxt"))
    write_json(output_dir / "anomalies.json", records)
    write_json(output_dir / "features.json", feature_summary(schema, label, row_counts))
    page = statistics_html(train_stats, eval_stats, row_counts, records)
    (output_dir / "stats.html").write_text(page, encoding="utf-8")
    log(f"wrote the results to {output_dir}")
    return {"row_counts": row_counts, "anomaly_count": len(records),
            "schema_inferred": not request.get("schema_path")}


def main(argv: list[str]) -> int:
    """Entry point: ``tfdv_job.py request.json``; returns the process exit code."""
    if len(argv) != 2:
        print(f"usage: {argv[0]} request.json", file=sys.stderr)
        return EXIT_INPUT_ERROR
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ chatter down
    # google-api-core warns at import about Python 3.11's end of life (2027): noise in every run.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
    try:
        request = read_request(Path(argv[1]))
    except InputError as error:
        log(f"error: {error}")
        return EXIT_INPUT_ERROR
    output_dir = Path(request["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        summary = run(request, output_dir)
    except InputError as error:
        log(f"error: {error}")
        write_json(output_dir / "result.json", {"error": str(error)})
        return EXIT_INPUT_ERROR
    write_json(output_dir / "result.json", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
