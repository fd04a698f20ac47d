"""The bad-data matrix: every kind of bad input is caught before training, with a clear message.

All cases run as ONE batch in ONE TFDV process (``validate_many``), so TensorFlow's import is paid
once: a clean baseline job first, whose training statistics the drift cases then compare with,
the broken tables after it. Cases caught before TFDV (empty, binary, wrong encoding...) are
reported by the same batch without touching TensorFlow. Also here: drift with and without an
injected shift, the Beam path (explicit DirectRunner) and ``s3://`` inputs on moto's S3 server.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kfp_cicd.components.validate_data.validation import (
    CURATED_SCHEMA,
    DataValidationFailed,
    ValidationJob,
    ValidationResult,
    raise_for_anomalies,
    validate_many,
)
from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions, split_train_holdout
from kfp_cicd.errors import DataError
from kfp_cicd.tfdv.options import ValidationOptions

Frames = tuple[pd.DataFrame, pd.DataFrame]


def _drop_country(train: pd.DataFrame, ev: pd.DataFrame) -> Frames:
    return train, ev.drop(columns=["country"])


def _new_column(train: pd.DataFrame, ev: pd.DataFrame) -> Frames:
    return train, ev.assign(coupon_code="SAVE10")


def _string_in_amount(train: pd.DataFrame, ev: pd.DataFrame) -> Frames:
    train = train.astype({"amount": object})
    train.loc[train.index[-3], "amount"] = "lots"  # late in the file: past type inference
    return train, ev


def _unknown_channel(train: pd.DataFrame, ev: pd.DataFrame) -> Frames:
    ev = ev.copy()
    ev.loc[ev.index[:5], "channel"] = "teleport"
    return train, ev


def _null_devices(train: pd.DataFrame, ev: pd.DataFrame) -> Frames:
    train = train.copy()
    train.loc[train.index[::40], "device_type"] = None
    return train, ev


def _negative_amount(train: pd.DataFrame, ev: pd.DataFrame) -> Frames:
    train = train.copy()
    train.loc[train.index[:10], "amount"] = -5.0
    return train, ev


def _no_label(train: pd.DataFrame, ev: pd.DataFrame) -> Frames:
    return train.drop(columns=[LABEL_COLUMN]), ev


def _amount_shift(train: pd.DataFrame, ev: pd.DataFrame) -> Frames:
    return train.assign(amount=train["amount"] * 4.0), ev


# name -> (frame edit or raw bytes for the eval file, expected: anomaly triple or error regex)
CASES: dict[str, tuple[Any, tuple[str, str, str] | str]] = {
    "missing required column": (_drop_country, ("eval", "country", "SCHEMA_MISSING_COLUMN")),
    "unexpected new column": (_new_column, ("eval", "coupon_code", "SCHEMA_NEW_COLUMN")),
    "string in a numeric column": (_string_in_amount, ("train", "amount", "UNEXPECTED_DATA_TYPE")),
    "category outside the domain": (
        _unknown_channel,
        ("eval", "channel", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"),
    ),
    "nulls in a required feature": (
        _null_devices,
        ("train", "device_type", "FEATURE_TYPE_LOW_FRACTION_PRESENT"),
    ),
    "value out of range": (_negative_amount, ("train", "amount", "FLOAT_TYPE_SMALL_FLOAT")),
    "label missing from training data": (
        _no_label,
        r"training data .* has no label column "
        r"'is_fraud'",
    ),
    "numeric drift past the threshold": (
        _amount_shift,
        ("train", "amount", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"),
    ),
    "empty file": (("eval.csv", b""), r"evaluation data .*eval\.csv is empty \(0 bytes\)"),
    "binary file named .csv": (("eval.csv", bytes(range(256)) * 8), r"is a binary file, not CSV"),
    "not UTF-8": (("eval.csv", "amount,city\n1,Zürich\n".encode("latin-1")), r"is not UTF-8 text"),
    "malformed CSV": (
        ("eval.csv", b"amount,hour\n1,2\n3,4,5,6\n"),
        r"not well-formed CSV: row 3 has 4 fields but the header has 2",
    ),
    "not Parquet": (("eval.parquet", b"amount,hour\n1,2\n"), r"is not a valid Parquet file"),
}
DRIFT_CASES = {"numeric drift past the threshold"}


@pytest.fixture(scope="module")
def clean_frames() -> Frames:
    """2,000 generated transactions split 80/20: clean under the curated schema."""
    return split_train_holdout(generate_transactions(2_000, seed=21), seed=21)


def _write_case(root: Path, name: str, edit: Any, clean: Frames) -> tuple[Path, Path]:
    """Write a case's train and eval files; bytes cases replace the eval file."""
    folder = root / re.sub(r"\W+", "_", name)
    folder.mkdir()
    train, ev = clean if isinstance(edit, tuple) else edit(*clean)
    train.to_csv(folder / "train.csv", index=False)
    if isinstance(edit, tuple):
        eval_path = folder / edit[0]
        eval_path.write_bytes(edit[1])
    else:
        eval_path = folder / "eval.csv"
        ev.to_csv(eval_path, index=False)
    return folder / "train.csv", eval_path


@pytest.fixture(scope="module")
def matrix(
    tmp_path_factory: pytest.TempPathFactory, clean_frames: Frames, s3_tables: tuple[str, str]
) -> dict[str, ValidationResult | DataError]:
    """Every case, plus a baseline, a no-drift run, a Beam run and an S3 run: one TFDV process."""
    root = tmp_path_factory.mktemp("matrix")
    baseline_train, baseline_eval = _write_case(root, "baseline", lambda t, e: (t, e), clean_frames)
    baseline_out = root / "baseline_out"
    baseline_stats = str(baseline_out / "train_stats.pb")
    # amount is heavy-tailed: between two samples of 1,600 rows of the same distribution its
    # Jensen-Shannon divergence on TFDV's equi-width histogram is already ~0.16, so it gets its own
    # threshold (as a pipeline would, through drift_thresholds).
    drift = ValidationOptions(
        baseline_statistics=baseline_stats, drift_default_threshold=0.15, drift_thresholds={"amount": 0.3}
    )
    jobs = {
        "baseline": ValidationJob(
            str(baseline_train), str(baseline_eval), LABEL_COLUMN, baseline_out, str(CURATED_SCHEMA)
        )
    }
    fresh = split_train_holdout(generate_transactions(2_000, seed=22), seed=22)
    fresh_train, fresh_eval = _write_case(root, "no shift", lambda t, e: fresh, clean_frames)
    jobs["no shift"] = ValidationJob(
        str(fresh_train), str(fresh_eval), LABEL_COLUMN, root / "no_shift_out", str(CURATED_SCHEMA), drift
    )
    jobs["beam"] = ValidationJob(
        str(baseline_train),
        str(baseline_eval),
        LABEL_COLUMN,
        root / "beam_out",
        str(CURATED_SCHEMA),
        ValidationOptions(processing="beam", beam_options=("--runner=DirectRunner",)),
    )
    jobs["s3"] = ValidationJob(s3_tables[0], s3_tables[1], LABEL_COLUMN, root / "s3_out", str(CURATED_SCHEMA))
    for name, (edit, _) in CASES.items():
        train, ev = _write_case(root, name, edit, clean_frames)
        jobs[name] = ValidationJob(
            str(train),
            str(ev),
            LABEL_COLUMN,
            root / f"{train.parent.name}_out",
            str(CURATED_SCHEMA),
            drift if name in DRIFT_CASES else ValidationOptions(),
        )
    started = time.monotonic()
    outcomes = validate_many(list(jobs.values()))
    print(f"bad-data matrix: {len(jobs)} validations in {time.monotonic() - started:.1f} s")
    return dict(zip(jobs, outcomes, strict=True))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_data_is_caught_before_training(matrix: dict[str, Any], case: str) -> None:
    outcome, expected = matrix[case], CASES[case][1]
    if isinstance(expected, str):
        assert isinstance(outcome, DataError), outcome
        assert re.search(expected, str(outcome)), str(outcome)
        return
    assert isinstance(outcome, ValidationResult), outcome
    with pytest.raises(DataValidationFailed) as caught:
        raise_for_anomalies(outcome)
    found = {(a.dataset, a.feature, a.kind): a for a in caught.value.anomalies}
    assert expected in found, sorted(found)
    anomaly = found[expected]
    assert anomaly.explanation and anomaly.explanation in str(caught.value)
    assert f"feature '{expected[1]}'" in str(caught.value)


def test_clean_data_passes_the_curated_schema(matrix: dict[str, Any]) -> None:
    result = matrix["baseline"]
    assert result.anomalies == [], result.anomalies
    assert result.row_counts == {"train": 1600, "eval": 400}
    assert result.processing == {"train": "in_memory", "eval": "in_memory"}
    assert result.drift == []
    assert "was not checked" in result.drift_markdown.read_text()


def test_tolerated_kinds_do_not_fail(matrix: dict[str, Any]) -> None:
    raise_for_anomalies(matrix["unexpected new column"], tolerate_kinds=["SCHEMA_NEW_COLUMN"])
    with pytest.raises(DataValidationFailed):
        raise_for_anomalies(matrix["category outside the domain"], tolerate_kinds=["SCHEMA_NEW_COLUMN"])


def test_drift_without_shift_is_measured_and_passes(matrix: dict[str, Any]) -> None:
    result = matrix["no shift"]
    assert result.anomalies == [], (result.anomalies, result.drift)
    assert {d.threshold for d in result.drift} == {0.15, 0.3}
    by_feature = {d.feature: d for d in result.drift}
    assert by_feature["amount"].metric == "JENSEN_SHANNON_DIVERGENCE"
    assert by_feature["country"].metric == "L_INFINITY"
    assert all(d.value is not None and 0 <= d.value <= d.threshold for d in result.drift)
    assert not any(d.drifted for d in result.drift)
    assert "| amount | JENSEN_SHANNON_DIVERGENCE |" in result.drift_markdown.read_text()


def test_drift_with_shift_names_the_feature_in_the_reports(matrix: dict[str, Any]) -> None:
    result = matrix["numeric drift past the threshold"]
    amount = next(d for d in result.drift if d.feature == "amount")
    assert amount.drifted and amount.value > amount.threshold == 0.3
    assert "**DRIFT**" in result.drift_markdown.read_text()
    assert "DRIFT" in result.drift_html.read_text()
    assert "Drift: " in result.summary_markdown.read_text()


def test_beam_path_gives_the_same_result_format(matrix: dict[str, Any]) -> None:
    beam, memory = matrix["beam"], matrix["baseline"]
    assert beam.processing == {"train": "beam", "eval": "beam"}
    assert beam.row_counts == memory.row_counts
    assert beam.anomalies == []
    assert beam.features.read_text() == memory.features.read_text()


def test_s3_inputs_are_read_from_the_s3_api(matrix: dict[str, Any], s3_tables: tuple[str, str]) -> None:
    result = matrix["s3"]
    assert isinstance(result, ValidationResult), result
    assert result.row_counts == {"train": 1600, "eval": 400}
    assert result.anomalies == []


# --- moto's standalone S3 server on loopback ---------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 API server on a free loopback port; stopped after the module."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("moto's S3 server did not start within 30 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def s3_tables(s3_server: str, clean_frames: Frames) -> Iterator[tuple[str, str]]:
    """The clean tables uploaded to s3://validation-data/ on the moto server."""
    saved = {
        key: os.environ.get(key)
        for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ENDPOINT_URL=s3_server,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server})
    fs.mkdir("validation-data")
    for name, frame in zip(("train.csv", "eval.csv"), clean_frames, strict=True):
        with fs.open(f"validation-data/{name}", "wb") as handle:
            handle.write(frame.to_csv(index=False).encode())
    try:
        yield "s3://validation-data/train.csv", "s3://validation-data/eval.csv"
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
