"""Validation throughput: 1M rows x the default features through the whole validate_data step.

Generates the synthetic card-fraud table (``--rows``, default 1,000,000; 24 features + label) as
CSV, then measures, side by side in one run:

* the whole validation step as the component runs it (``validate_datasets``: TFDV interpreter
  start and import, read, statistics, schema, anomalies, reports) on train = eval = that file,
  i.e. 2 x rows validated; peak memory is the largest RSS of the TFDV process tree;
* the in-job validation time (statistics, anomalies, reports; TensorFlow's import excluded) that
  the TFDV job reports;
* the floor: pandas ``read_csv`` + ``describe()`` of the same file, in the same run.

Prints rows/s and peak memory of each. Usage::

    .venv/bin/python benchmarks/validation_throughput.py [--rows 1000000] [--schema curated]
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import tempfile
import threading
import time
from pathlib import Path

import psutil

from kfp_cicd.components.validate_data.validation import CURATED_SCHEMA, validate_datasets
from kfp_cicd.data.synthetic import generate_transactions


class PeakRss:
    """Samples the summed RSS of this process's children (the TFDV job and its workers)."""

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--schema", choices=("curated", "inferred"), default="curated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="validation-bench-") as work:
        path = Path(work) / "transactions.csv"
        print(f"generating {args.rows} rows ...", flush=True)
        generate_transactions(args.rows, seed=1).to_csv(path, index=False)
        machine = platform.processor() or platform.machine()
        print(
            f"{path.stat().st_size / 1e6:.0f} MB CSV; machine: {machine}, {psutil.cpu_count()} CPUs, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
            flush=True,
        )
        floor_s, floor_mem = pandas_floor(path)
        print(
            f"pandas read_csv+describe: {floor_s:.2f} s = {args.rows / floor_s:,.0f} rows/s, "
            f"+{floor_mem / 2**20:.0f} MiB",
            flush=True,
        )
        schema = str(CURATED_SCHEMA) if args.schema == "curated" else None
        with PeakRss() as rss:
            started = time.perf_counter()
            result = validate_datasets(
                str(path),
                str(path),
                label_column="is_fraud",
                output_dir=Path(work) / "out",
                schema_path=schema,
            )
            step_s = time.perf_counter() - started
        rows = sum(result.row_counts.values())
        assert result.anomalies == [], result.anomalies
        print(
            f"validate_data step (2 x {args.rows} rows, incl. TFDV start/import): {step_s:.2f} s "
            f"= {rows / step_s:,.0f} rows/s; peak RSS {rss.peak / 2**20:.0f} MiB",
            flush=True,
        )
        print(
            f"  in-job validation (import excluded): {result.seconds:.2f} s = "
            f"{rows / result.seconds:,.0f} rows/s; ratio to the pandas floor per table: "
            f"{(result.seconds / 2) / floor_s:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
