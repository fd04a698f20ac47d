"""Validation throughput: 1M rows x the default features through the whole validate_data step.

Generates the synthetic card-fraud table (``--rows``, default 1,000,000; 24 features + label) as
CSV: a training and an evaluation table, and a reference table of another seed. Outside the timed
part, a first validation of the reference table (as a first release: schema inferred, with the
observed ranges and category domains) gives the reference's ``schema.pbtxt`` and
``train_stats.pb``. Then it measures, side by side in one run:

* the whole validation step as the default run does it (``validate_datasets``: staging, the
  training file's fingerprint, the hostile-input checks, TFDV interpreter start and import,
  reads, statistics, the schema with tolerances, anomalies, drift against the reference's
  statistics, reports) on train + eval, i.e. 2 x rows validated, against the reference's schema
  (``--schema reference``, the default) or the curated one (``--schema curated``); peak memory is
  the largest summed RSS of the TFDV process tree;
* the in-job validation time the TFDV job reports (after TensorFlow's import; the reads that ran
  during the import are not in it);
* the label check the component does first (pandas reads the label column of both tables);
* the floor: pandas ``read_csv`` + ``describe(include="all")`` of the training file.

Prints rows/s, peak memory, the load average around each figure and the job's CPU time (CPU
seconds well under 2 x wall seconds on 2 cores means other processes had the cores).
Usage::

    .venv/bin/python benchmarks/validation_throughput.py [--rows 1000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from kfp_cicd.components.validate_data.validation import (
    CURATED_SCHEMA,
    ValidationResult,
    label_classes,
    validate_datasets,
)
from kfp_cicd.data.synthetic import generate_transactions
from kfp_cicd.tfdv.options import ValidationOptions

LABEL = "is_fraud"


class PeakRss:
    """Samples the summed RSS of this process's children (the TFDV job and anything it starts)."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)

    def _run(self, interval_s: float) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(interval_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def load() -> str:
    """The 1-minute load average, e.g. ``"load 1.23"``."""
    return f"load {os.getloadavg()[0]:.2f}"


def children_cpu_s() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pandas_floor(path: Path) -> tuple[float, int]:
    """Seconds and RSS growth of pandas read_csv + describe() of ``path`` (in this process)."""
    import pandas as pd

    before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    frame = pd.read_csv(path)
    frame.describe(include="all")
    seconds = time.perf_counter() - started
    peak = psutil.Process().memory_info().rss - before
    del frame
    return seconds, peak


def schema_constraints(schema: Path) -> str:
    """How many numeric ranges and category domains a text-format schema holds."""
    text = schema.read_text(encoding="utf-8")
    ranges = text.count("float_domain {") + text.count("int_domain {")
    domains = text.count("\n  string_domain {") + text.count("\n  domain: ")  # inline or named
    return f"{ranges} numeric ranges, {domains} category domains"


def make_tables(work: Path, rows: int) -> dict[str, Path]:
    """The training, evaluation and reference CSVs (seeds 1, 2, 3)."""
    paths = {}
    for name, seed in (("train", 1), ("eval", 2), ("reference", 3)):
        paths[name] = work / f"{name}.csv"
        generate_transactions(rows, seed=seed).to_csv(paths[name], index=False)
    return paths


def reference_run(paths: dict[str, Path], work: Path) -> ValidationResult:
    """The first release's validation of the reference table (schema inferred), untimed."""
    return validate_datasets(
        str(paths["reference"]),
        str(paths["reference"]),
        label_column=LABEL,
        output_dir=work / "reference",
    )


def timed_step(paths: dict[str, Path], work: Path, schema: Path, baseline: Path, index: int) -> None:
    """One whole validate_data step against the reference; prints its figures."""
    options = ValidationOptions(baseline_statistics=str(baseline), reference_name="the reference run")
    rows_before = load()
    cpu_before = children_cpu_s()
    with PeakRss() as rss:
        started = time.perf_counter()
        result = validate_datasets(
            str(paths["train"]),
            str(paths["eval"]),
            label_column=LABEL,
            output_dir=work / f"out{index}",
            schema_path=str(schema),
            options=options,
        )
        step_s = time.perf_counter() - started
    cpu_s = children_cpu_s() - cpu_before
    rows = sum(result.row_counts.values())
    assert len(result.drift) > 0, "the drift comparison against the reference did not run"
    if result.anomalies:
        print(f"  NOTE: {len(result.anomalies)} anomalies: {[str(a) for a in result.anomalies[:5]]}")
    drifted = [d.feature for d in result.drift if d.drifted]
    print(
        f"[{index}] whole validate_data step (2 x {rows // 2} rows, incl. TFDV start/import, "
        f"drift vs reference on {len(result.drift)} features, {len(drifted)} drifted): "
        f"{step_s:.2f} s = {rows / step_s:,.0f} rows/s; peak RSS {rss.peak / 2**20:,.0f} MiB; "
        f"job CPU {cpu_s:.1f} s; {rows_before} before, {load()} after",
        flush=True,
    )
    print(
        f"    in-job validation (after the import): {result.seconds:.2f} s = "
        f"{rows / result.seconds:,.0f} rows/s; processing {result.processing}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--schema", choices=("reference", "curated"), default="reference")
    parser.add_argument("--repeat", type=int, default=1, help="timed steps, one after another")
    args = parser.parse_args()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.processor() or platform.machine()}, "
        f"{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB; {load()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="validation-bench-") as work_text:
        work = Path(work_text)
        print(f"generating 3 tables of {args.rows} rows ...", flush=True)
        paths = make_tables(work, args.rows)
        print(f"{paths['train'].stat().st_size / 1e6:.0f} MB CSV each", flush=True)
        reference = reference_run(paths, work)
        schema = reference.schema if args.schema == "reference" else CURATED_SCHEMA
        print(f"reference (untimed): schema {args.schema}: {schema_constraints(schema)}", flush=True)

        rows_before = load()
        floor_s, floor_mem = pandas_floor(paths["train"])
        print(
            f"pandas read_csv+describe (1 table): {floor_s:.2f} s = {args.rows / floor_s:,.0f} rows/s, "
            f"+{floor_mem / 2**20:,.0f} MiB; {rows_before} before, {load()} after",
            flush=True,
        )
        started = time.perf_counter()
        label_classes(str(paths["train"]), str(paths["eval"]), LABEL)
        print(
            f"label check before TFDV (pandas reads the label column of both tables): "
            f"{time.perf_counter() - started:.2f} s",
            flush=True,
        )
        for index in range(args.repeat):
            timed_step(paths, work, schema, reference.train_statistics, index)


if __name__ == "__main__":
    main()
