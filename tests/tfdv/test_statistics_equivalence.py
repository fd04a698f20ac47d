"""The in-memory statistics path computes what TFDV itself computes, in the TFDV interpreter.

``in_memory_statistics`` reads the table with pyarrow (optionally started early by
``start_reading``, while TensorFlow is imported) and runs TFDV's in-memory statistics over groups
of columns in threads. These tests run it in the validation environment next to TFDV's own
functions and compare the text-format protos exactly: counts, means, quantile and standard
histograms, top values. One TFDV process serves the whole module (TensorFlow's import is slow).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kfp_cicd.tfdv.environment import find_tfdv_python
from kfp_cicd.tfdv.jobs import JOB_SCRIPT

# Runs in the TFDV interpreter: argv = jobs directory, data directory; prints one JSON object.
_CHECKS = r"""
import json, sys, warnings
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, sys.argv[1])
data = Path(sys.argv[2])

import pandas as pd
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_data_validation.statistics import stats_impl
from tfx_bsl.arrow import table_util

import tfdv_statistics as ts
from tfdv_inputs import InputError, inspect_table, read_table

text = text_format.MessageToString
report = {}

def whole_table(table):
    # TFDV's own in-memory statistics of the whole table as one RecordBatch.
    batch = table_util.CanonicalizeRecordBatch(read_table(table).combine_chunks().to_batches()[0])
    return stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())

mixed = inspect_table(str(data / "mixed.csv"), "training")
expected = text(whole_table(mixed))
report["features"] = expected.count("features {")
report["threads"] = {
    str(n): text(ts.in_memory_statistics(mixed, ts.ScaleOptions(n_jobs=n))) == expected
    for n in (1, 2, 3, 40)
}
report["auto"] = text(ts.in_memory_statistics(mixed, ts.ScaleOptions())) == expected

clean = inspect_table(str(data / "clean.csv"), "training")
# round_trip: pandas' default float parser may miss the nearest double by an ulp; pyarrow's doesn't.
frame = pd.read_csv(data / "clean.csv", float_precision="round_trip")
from_frame = tfdv.generate_statistics_from_dataframe(frame, n_jobs=1)
ours = ts.in_memory_statistics(clean, ts.ScaleOptions(n_jobs=3))
report["dataframe"] = text(ours) == text(from_frame)
report["rows"] = int(ours.datasets[0].num_examples)

import pyarrow as pa
cpus = pa.cpu_count()
with ts.reading_meanwhile([({"scale": {"n_jobs": 2}}, (mixed, clean))]):
    report["cpus_while_reading"] = [cpus, pa.cpu_count()]
report["cpus_after"] = pa.cpu_count()
report["prefetched"] = sorted(key[0].path.rsplit("/", 1)[-1] for key in ts._READS)
report["prefetched_same"] = text(ts.in_memory_statistics(mixed, ts.ScaleOptions(n_jobs=2))) == expected
report["left_after_take"] = len(ts._READS)
ts._READS.clear()

broken = inspect_table(str(data / "broken_late.csv"), "evaluation")
ts.start_reading([({}, broken)])
try:
    ts.in_memory_statistics(broken, ts.ScaleOptions())
    report["late_error"] = None
except InputError as error:
    report["late_error"] = str(error)
print(json.dumps(report))
"""


def _frame(rows: int, seed: int) -> pd.DataFrame:
    """Floats, ints, a 0/1 flag, categories and a long-tailed amount; no missing values."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3.0, 1.2, rows).round(2),
            "hour": rng.integers(0, 24, rows),
            "score": rng.random(rows),
            "flag": rng.integers(0, 2, rows),
            "channel": rng.choice(["online", "pos", "atm", "contactless"], rows),
            "country": rng.choice([f"C{i}" for i in range(60)], rows),
            "label": (rng.random(rows) < 0.1).astype(int),
        }
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The checks' results from one TFDV process."""
    data = tmp_path_factory.mktemp("statistics_equivalence")
    clean = _frame(3_000, seed=1)
    clean.to_csv(data / "clean.csv", index=False)
    mixed = _frame(3_000, seed=2)
    mixed.loc[::7, "amount"] = np.nan  # gaps in a float column
    mixed.loc[::11, "channel"] = None  # gaps in a string column
    mixed["active"] = np.where(np.arange(3_000) % 3 == 0, "true", "false")  # a bool column
    mixed["empty"] = None  # no values at all (read as nulls)
    mixed.to_csv(data / "mixed.csv", index=False)
    lines = (data / "clean.csv").read_text().splitlines()
    lines[-1] += ",extra"  # a malformed last row, past the head the quick checks read
    (data / "broken_late.csv").write_text("\n".join(lines) + "\n")
    completed = subprocess.run(
        [find_tfdv_python(), "-I", "-c", _CHECKS, str(JOB_SCRIPT.parent), str(data)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_column_threads_give_tfdvs_whole_table_statistics(report: dict[str, Any]) -> None:
    assert report["features"] == 9
    assert report["threads"] == {"1": True, "2": True, "3": True, "40": True}
    assert report["auto"]


def test_statistics_equal_tfdvs_own_dataframe_statistics(report: dict[str, Any]) -> None:
    assert report["rows"] == 3_000
    assert report["dataframe"], "differs from tfdv.generate_statistics_from_dataframe"


def test_tables_read_during_the_import_are_used_once(report: dict[str, Any]) -> None:
    cpus, meanwhile = report["cpus_while_reading"]
    assert meanwhile == max(1, cpus - 1), "the import keeps a core while the tables are read"
    assert report["cpus_after"] == cpus
    assert report["prefetched"] == ["clean.csv", "mixed.csv"]
    assert report["prefetched_same"]
    assert report["left_after_take"] == 1, "the taken table must leave the cache"


def test_an_error_of_an_early_read_is_reported_by_the_statistics(report: dict[str, Any]) -> None:
    assert report["late_error"] is not None, "a malformed row must be an InputError"
    assert "evaluation data" in report["late_error"] and "broken_late.csv" in report["late_error"]
