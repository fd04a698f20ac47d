"""Hostile data through the real validation: the TFDV job's own input checks, then one full batch.

The TFDV-side checks (``tfdv_inputs``, run by the validation interpreter, which cannot import
kfp_cicd) are exercised in one short subprocess that never imports TensorFlow. The full path
(``validate_many``: main-environment checks, then the TFDV job) runs one batch in one process:
formula and markup strings validate as data and come out escaped in the reports; a 50 MB field,
a lying Parquet footer and a short row deep in a file each end as a DataError naming the file.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kfp_cicd.components.validate_data.validation import (
    ValidationJob,
    ValidationResult,
    validate_many,
)
from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions
from kfp_cicd.errors import DataError, EnvironmentNotReady
from kfp_cicd.tfdv.environment import find_tfdv_python
from kfp_cicd.tfdv.jobs import JOB_SCRIPT

MARKUP = "<img src=x onerror=alert(1)>"
FORMULAS = ["=cmd|' /C calc'!A0", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "<b>bold</b>"]


def _tfdv_python() -> str:
    try:
        return find_tfdv_python()
    except EnvironmentNotReady as error:
        pytest.skip(str(error))


def _liar_parquet(path: Path) -> None:
    """A Parquet file of 1,234 rows whose footer's total claims 5 billion (its row group does not)."""
    buffer = io.BytesIO()
    pd.DataFrame({"amount": [1.0] * 1234, LABEL_COLUMN: [0] * 1234}).to_parquet(buffer)
    data = buffer.getvalue()
    length = struct.unpack("<I", data[-8:-4])[0]
    footer = data[-8 - length : -8]
    footer = footer.replace(b"\x16\xa4\x13", b"\x16\x80\xc8\xaf\xa0\x25", 1)  # 1234 -> 5e9 (zig-zag)
    path.write_bytes(data[: -8 - length] + footer + struct.pack("<I", len(footer)) + b"PAR1")


_INSPECT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tfdv_inputs import InputError, inspect_table, read_table
outcome = {}
for path in sys.argv[2:]:
    try:
        read_table(inspect_table(path, "training"))
        outcome[path] = "ok"
    except InputError as error:
        outcome[path] = "InputError: " + str(error)
print(json.dumps(outcome))
"""


def test_the_tfdv_jobs_own_checks_name_hostile_files(tmp_path: Path) -> None:
    """Without TensorFlow: what the job refuses when it is run by itself, and why."""
    header = tmp_path / "header.csv"
    header.write_bytes(b"a" * (2 << 20) + b"\n1\n")
    short = tmp_path / "short.csv"
    short.write_bytes(b"note,amount,city\n" + b"a,1,b\n" * 500 + b"a\n")
    liar = tmp_path / "liar.parquet"
    _liar_parquet(liar)
    files = [header, short, liar]
    done = subprocess.run(
        [_tfdv_python(), "-I", "-c", _INSPECT, str(JOB_SCRIPT.parent), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    outcome = json.loads(done.stdout)
    assert "first line is longer than 1 MiB" in outcome[str(header)]
    assert "not well-formed CSV" in outcome[str(short)] and "Expected 3 columns" in outcome[str(short)]
    assert "corrupted Parquet footer" in outcome[str(liar)] and "5,000,000,000" in outcome[str(liar)]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Four validations in one TFDV process (TensorFlow imported once)."""
    root = tmp_path_factory.mktemp("hostile")
    frame = generate_transactions(1_500, seed=5)
    frame["note"] = [FORMULAS[i % len(FORMULAS)] for i in range(len(frame))]
    train, evaluation = root / "train.csv", root / "eval.csv"
    frame.iloc[:1200].to_csv(train, index=False)
    hostile_eval = frame.iloc[1200:].copy()
    hostile_eval.loc[hostile_eval.index[:30], "note"] = MARKUP  # not in the training domain
    hostile_eval.to_csv(evaluation, index=False)

    big = root / "bigcell.csv"
    big.write_bytes(train.read_bytes() + b"A" * 50_000_000 + b"\n")
    liar = root / "liar.parquet"
    _liar_parquet(liar)
    short = root / "short.csv"
    short.write_bytes(train.read_bytes() + b"1.0,2\n")  # past the 200 rows the quick check reads

    jobs = {
        "markup": ValidationJob(str(train), str(evaluation), LABEL_COLUMN, root / "markup_out"),
        "50 MB field": ValidationJob(str(big), str(evaluation), LABEL_COLUMN, root / "big_out"),
        "lying footer": ValidationJob(str(train), str(liar), LABEL_COLUMN, root / "liar_out"),
        "short row": ValidationJob(str(short), str(evaluation), LABEL_COLUMN, root / "short_out"),
    }
    _tfdv_python()
    return {
        "files": {"big": big, "liar": liar, "short": short},
        **dict(zip(jobs, validate_many(list(jobs.values())), strict=True)),
    }


@pytest.mark.slow
def test_formula_and_markup_strings_validate_and_are_escaped_in_reports(batch: dict[str, Any]) -> None:
    result = batch["markup"]
    assert isinstance(result, ValidationResult), result
    found = {(a.dataset, a.feature, a.kind) for a in result.anomalies}
    assert found == {("eval", "note", "ENUM_TYPE_UNEXPECTED_STRING_VALUES")}, found
    assert MARKUP in result.anomalies[0].description  # the data itself is untouched
    for page in (result.report_html, result.summary_markdown):
        text = page.read_text(encoding="utf-8")
        assert "&lt;img src=x onerror=alert(1)&gt;" in text, page
        assert MARKUP not in text, page
    features = json.loads(result.features.read_text())["features"]
    assert {"name": "note", "kind": "categorical", "dtype": "string"} in features


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "file", "fragments"),
    [
        ("50 MB field", "big", ["training data /", "line 1202 is longer than 16 MiB"]),
        ("lying footer", "liar", ["evaluation data /", "corrupted Parquet footer"]),
        ("short row", "short", ["not well-formed CSV", "Expected"]),
    ],
)
def test_hostile_tables_fail_validation_with_a_data_error(
    batch: dict[str, Any], case: str, file: str, fragments: list[str]
) -> None:
    outcome = batch[case]
    assert isinstance(outcome, DataError), outcome
    message = str(outcome)
    assert str(batch["files"][file]) in message, message
    for fragment in fragments:
        assert fragment in message, message
