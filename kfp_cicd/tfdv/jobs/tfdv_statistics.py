"""TFDV statistics of one table, two ways with one result: in memory, or on Apache Beam.

* **In memory** (data that fits): pyarrow reads the file (multi-threaded; :func:`start_reading`
  starts the reads while TensorFlow is still being imported), and TFDV's in-memory statistics run
  over groups of columns in ``n_jobs`` threads, each on all rows, so the result is the one TFDV
  computes on the whole table at once. No Beam pipeline, no DataFrame round trip.
* **Beam**: TFDV's ``GenerateStatistics`` PTransform in a Beam pipeline built with the caller's
  pipeline options, so the same step runs on Dataflow (``--runner=DataflowRunner ...``) or any
  other runner. Local data is never sent through Beam's DirectRunner unless asked for.

Runs in the validation environment only (imports TFDV).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tfdv_inputs import InputError, TableInput, read_table

if TYPE_CHECKING:
    import pyarrow as pa
    from tensorflow_metadata.proto.v0 import statistics_pb2

IN_MEMORY, BEAM, AUTO = "in_memory", "beam", "auto"
_MIN_ROWS_PER_THREAD = 50_000
_LOCAL_RUNNERS = ("", "directrunner", "direct", "prismrunner", "prism")
#: Estimated Arrow bytes :func:`start_reading` may hold before the statistics take them.
_PREFETCH_BYTES = 512 << 20

# Reads started by start_reading, by (table, sample_rate, seed); the one reading thread.
_READS: dict[tuple[TableInput, float, int], Future[pa.Table]] = {}
_READER: dict[str, ThreadPoolExecutor] = {}


@dataclass(frozen=True)
class ScaleOptions:
    """How to compute statistics at scale.

    Attributes:
        processing: ``"auto"``, ``"in_memory"`` or ``"beam"``.
        beam_threshold_bytes: in ``auto`` mode, files larger than this go to Beam *if*
            ``beam_options`` name a runner; otherwise they stay in memory (never DirectRunner).
        beam_options: Beam pipeline flags, e.g. ``["--runner=DataflowRunner", "--project=p"]``.
        sample_rate: fraction of rows (0 < r <= 1) the statistics are computed on.
        seed: seed of the in-memory row sampling.
        n_jobs: threads of the in-memory path, each computing the statistics of a group of
            columns (default: the usable CPUs; 1 for tables under 50,000 rows).
    """

    processing: str = AUTO
    beam_threshold_bytes: int = 1 << 30
    beam_options: tuple[str, ...] = field(default_factory=tuple)
    sample_rate: float = 1.0
    seed: int = 0
    n_jobs: int = 0

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> ScaleOptions:
        """Read the ``scale`` object of a job request, checking each value."""
        scale = request.get("scale") or {}
        processing = str(scale.get("processing") or AUTO)
        if processing not in (AUTO, IN_MEMORY, BEAM):
            raise InputError(f"processing must be auto, in_memory or beam, not {processing!r}.")
        rate = float(scale.get("sample_rate", 1.0))
        if not 0.0 < rate <= 1.0:
            raise InputError(f"sample_rate must be in (0, 1], not {rate}.")
        options = scale.get("beam_options") or []
        flags = tuple(shlex.split(options) if isinstance(options, str) else map(str, options))
        return cls(
            processing=processing,
            beam_threshold_bytes=int(scale.get("beam_threshold_bytes", 1 << 30)),
            beam_options=flags,
            sample_rate=rate,
            seed=int(scale.get("seed", 0)),
            n_jobs=int(scale.get("n_jobs", 0)),
        )

    @property
    def runner(self) -> str:
        """The ``--runner`` the Beam options name, ``""`` if none."""
        for index, flag in enumerate(self.beam_options):
            if flag.startswith("--runner="):
                return flag.split("=", 1)[1]
            if flag == "--runner" and index + 1 < len(self.beam_options):
                return self.beam_options[index + 1]
        return ""


def choose_path(table: TableInput, scale: ScaleOptions) -> str:
    """``"beam"`` or ``"in_memory"`` for this table (see :class:`ScaleOptions`)."""
    if scale.processing != AUTO:
        return scale.processing
    if table.size_bytes > scale.beam_threshold_bytes and scale.runner:
        return BEAM
    return IN_MEMORY


def compute_statistics(
    table: TableInput, scale: ScaleOptions, log: Any
) -> tuple[statistics_pb2.DatasetFeatureStatisticsList, str]:
    """Statistics of ``table`` and the path (``"in_memory"``/``"beam"``) that computed them."""
    path = choose_path(table, scale)
    if path == BEAM:
        log(
            f"{table.label}: {table.size_bytes / 1e6:.1f} MB through Beam "
            f"(runner {scale.runner or 'DirectRunner'})"
        )
        return beam_statistics(table, scale), BEAM
    if table.size_bytes > scale.beam_threshold_bytes:
        log(
            f"{table.label}: {table.size_bytes / 1e6:.1f} MB is above the Beam threshold, but no "
            "beam_options name a runner: computing in memory rather than on the DirectRunner"
        )
    return in_memory_statistics(table, scale), IN_MEMORY


# --- in memory ----------------------------------------------------------------------------------


@contextlib.contextmanager
def reading_meanwhile(jobs: Iterable[tuple[dict[str, Any], Any]]) -> Iterator[None]:
    """Read the jobs' in-memory tables (:func:`start_reading`) while the block runs.

    The block is TensorFlow's import, which keeps one core busy: pyarrow gets one CPU fewer
    until it ends, so the reads and the import do not take turns on the same core.
    """
    import pyarrow as pa

    cpus = pa.cpu_count()
    if start_reading(jobs):
        pa.set_cpu_count(max(1, cpus - 1))
    try:
        yield
    finally:
        pa.set_cpu_count(cpus)


def start_reading(jobs: Iterable[tuple[dict[str, Any], Any]]) -> bool:
    """Start reading the checked jobs' in-memory tables in a background thread; True if any.

    ``jobs`` are ``(job request, inputs)`` pairs, the inputs a :class:`TableInput`, a tuple of
    them (train, eval) or ``None``.

    pyarrow's reader releases the GIL, so the reads run on the cores the import leaves idle.
    Tables are read in order while their estimated memory (:func:`_memory_estimate`) stays within
    :data:`_PREFETCH_BYTES` in total; the rest are read when their statistics are computed. A
    table taken by :func:`in_memory_statistics` leaves the cache; a read error is raised there, as
    if the table had been read then.
    """
    budget, started = _PREFETCH_BYTES, False
    for table, scale in _tables_of(jobs):
        key = (table, scale.sample_rate, scale.seed)
        if choose_path(table, scale) != IN_MEMORY or key in _READS:
            continue
        budget -= _memory_estimate(table)
        if budget < 0:
            break
        started = True
        if _READER.get("pool") is None:
            # The readers' modules are imported here, not in the thread, beside TensorFlow's import.
            import numpy  # noqa: F401
            import pyarrow.csv
            import pyarrow.parquet  # noqa: F401

            _READER["pool"] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfdv-read")
        _READS[key] = _READER["pool"].submit(_read_combined, table, scale)
    return started


def _tables_of(jobs: Iterable[tuple[dict[str, Any], Any]]) -> Iterator[tuple[TableInput, ScaleOptions]]:
    """Each job's tables with its scale options; a job with unusable options fails in its own run."""
    for job, inputs in jobs:
        tables = inputs if isinstance(inputs, tuple) else (inputs,)
        try:
            scale = ScaleOptions.from_request(job)
        except (InputError, TypeError, ValueError):
            continue
        yield from ((table, scale) for table in tables if isinstance(table, TableInput))


def _memory_estimate(table: TableInput) -> int:
    """Rough bytes of ``table`` read into Arrow: its size, times 5 when compressed."""
    compressed = table.fmt == "parquet" or table.path.lower().endswith(".gz")
    return table.size_bytes * (5 if compressed else 1)


def _read(table: TableInput, scale: ScaleOptions) -> pa.Table:
    """The table as :func:`start_reading` read it, or read now."""
    future = _READS.pop((table, scale.sample_rate, scale.seed), None)
    if future is not None:
        return future.result()
    return _read_combined(table, scale)


def _read_combined(table: TableInput, scale: ScaleOptions) -> pa.Table:
    """The (sampled) table with each column in one contiguous chunk, as TFDV takes it."""
    return read_table(table, scale.sample_rate, scale.seed).combine_chunks()


def in_memory_statistics(
    table: TableInput, scale: ScaleOptions
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Arrow read, then TFDV's in-memory statistics over groups of columns in parallel threads.

    Each thread runs TFDV's ``generate_statistics_in_memory`` on all rows of its columns (most
    of the work, in tfx_bsl's sketches, Arrow and numpy, runs outside the GIL), and the
    features are put back in the table's column order. Every feature's statistics are computed
    from all its rows in one pass, so the result is the one TFDV computes on the whole table in
    one batch, whatever the number of threads (a split by rows would make the quantile
    histograms depend on it).
    """
    import tensorflow_data_validation as tfdv

    data = _read(table, scale)
    if data.num_rows == 0:
        raise InputError(
            f"{table.label} has no rows left to validate (sample_rate "
            f"{scale.sample_rate} kept none). Raise sample_rate."
        )
    options = tfdv.StatsOptions()
    groups = column_groups(data.column_names, _thread_count(data, scale))
    if len(groups) == 1:
        parts = [_group_statistics(data, options)]
    else:
        with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="tfdv-stats") as pool:
            parts = list(pool.map(lambda names: _group_statistics(data.select(names), options), groups))
    return _joined(parts, data.column_names)


def _thread_count(data: pa.Table, scale: ScaleOptions) -> int:
    """``scale.n_jobs`` if set, else the usable CPUs (1 for a small table)."""
    if scale.n_jobs > 0:
        return scale.n_jobs
    if data.num_rows < _MIN_ROWS_PER_THREAD:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def column_groups(names: list[str], parts: int) -> list[list[str]]:
    """``names`` dealt round-robin into at most ``parts`` non-empty groups."""
    parts = max(1, min(parts, len(names)))
    return [names[index::parts] for index in range(parts)]


def _group_statistics(data: pa.Table, options: Any) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV's statistics of ``data`` as one canonical RecordBatch (runs in a worker thread)."""
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.arrow import table_util

    batch = table_util.CanonicalizeRecordBatch(_single_batch(data.combine_chunks().to_batches(), data))
    return stats_impl.generate_statistics_in_memory(batch, options)


def _joined(
    parts: list[statistics_pb2.DatasetFeatureStatisticsList], columns: list[str]
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """One data set of every part's features, in the table's column order."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    datasets = [part.datasets[0] for part in parts]
    counts = {dataset.num_examples for dataset in datasets}
    if len(counts) != 1:  # every group saw every row; anything else is a bug here
        raise RuntimeError(f"column groups counted different numbers of rows: {sorted(counts)}")
    position = {name: index for index, name in enumerate(columns)}
    features = sorted(
        (feature for dataset in datasets for feature in dataset.features),
        key=lambda feature: position.get(".".join(feature.path.step) or feature.name, len(columns)),
    )
    result = statistics_pb2.DatasetFeatureStatisticsList()
    joined = result.datasets.add()
    joined.CopyFrom(datasets[0])
    del joined.features[:]
    joined.features.extend(features)
    for dataset in datasets[1:]:
        joined.cross_features.extend(dataset.cross_features)
    return result


def _single_batch(batches: list[pa.RecordBatch], data: pa.Table) -> pa.RecordBatch:
    """The one RecordBatch of a combined table (an empty one if the table has no rows)."""
    import pyarrow as pa

    if batches:
        return batches[0]
    return pa.RecordBatch.from_arrays([pa.array([], c.type) for c in data.columns], names=data.column_names)


# --- Beam ---------------------------------------------------------------------------------------


def beam_statistics(table: TableInput, scale: ScaleOptions) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV statistics in a Beam pipeline run with ``scale.beam_options``."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions

    options = tfdv.StatsOptions(sample_rate=scale.sample_rate if scale.sample_rate < 1 else None)
    pipeline_options = PipelineOptions(list(scale.beam_options))
    with tempfile.TemporaryDirectory(prefix="tfdv-beam-") as work:
        output = _stats_output_path(scale, work)
        try:
            if table.fmt == "csv":
                # No column names: TFDV reads them from the header line and skips it.
                return tfdv.generate_statistics_from_csv(
                    table.path,
                    delimiter=",",
                    output_path=output,
                    stats_options=options,
                    pipeline_options=pipeline_options,
                )
            with beam.Pipeline(options=pipeline_options) as pipeline:
                _ = (
                    pipeline
                    | "ReadParquet" >> beam.io.ReadFromParquetBatched(table.path)
                    | "ToRecordBatches" >> beam.FlatMap(_canonical_batches)
                    | "GenerateStatistics" >> tfdv.GenerateStatistics(options)
                    | "WriteStatistics" >> tfdv.WriteStatisticsToBinaryFile(output)
                )
            return tfdv.load_stats_binary(output)
        except (ValueError, TypeError) as error:
            raise InputError(f"{table.label}: the Beam statistics pipeline failed: {error}") from error


def _stats_output_path(scale: ScaleOptions, work: str) -> str:
    """Where the Beam pipeline writes its statistics: under ``--temp_location`` on a remote
    runner (its workers cannot write to this machine), else in a local temporary directory."""
    if scale.runner.lower() not in _LOCAL_RUNNERS:
        for flag in scale.beam_options:
            if flag.startswith("--temp_location="):
                return flag.split("=", 1)[1].rstrip("/") + "/tfdv_statistics.pb"
    return os.path.join(work, "statistics.pb")


def _canonical_batches(table: pa.Table) -> list[pa.RecordBatch]:
    """Parquet batches as the list-typed RecordBatches TFDV's transforms expect."""
    from tfdv_inputs import tfdv_compatible
    from tfx_bsl.arrow import table_util

    return [table_util.CanonicalizeRecordBatch(batch) for batch in tfdv_compatible(table).to_batches()]
