"""TFDV statistics of one table, two ways with one result: in memory, or on Apache Beam.

* **In memory** (data that fits): pyarrow reads the file (multi-threaded), and TFDV's combiner
  generators run over slices of the Arrow table in ``n_jobs`` forked worker processes, whose
  partial results are merged. No Beam pipeline, no DataFrame round trip.
* **Beam**: TFDV's ``GenerateStatistics`` PTransform in a Beam pipeline built with the caller's
  pipeline options, so the same step runs on Dataflow (``--runner=DataflowRunner ...``) or any
  other runner. Local data is never sent through Beam's DirectRunner unless asked for.

Runs in the validation environment only (imports TFDV).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import shlex
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tfdv_inputs import InputError, TableInput, read_table

if TYPE_CHECKING:
    import pyarrow as pa
    from tensorflow_metadata.proto.v0 import statistics_pb2

IN_MEMORY, BEAM, AUTO = "in_memory", "beam", "auto"
_MIN_ROWS_PER_WORKER = 50_000
_LOCAL_RUNNERS = ("", "directrunner", "direct", "prismrunner", "prism")

# Set before forking the workers, read by them (fork copies them; nothing is pickled).
_SHARED: dict[str, Any] = {}


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
        n_jobs: worker processes of the in-memory path (default: the CPU count).
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


def in_memory_statistics(
    table: TableInput, scale: ScaleOptions
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Arrow read, then TFDV's combiners over table slices in parallel worker processes."""
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl

    data = read_table(table, scale.sample_rate, scale.seed)
    if data.num_rows == 0:
        raise InputError(
            f"{table.label} has no rows left to validate (sample_rate "
            f"{scale.sample_rate} kept none). Raise sample_rate."
        )
    options = tfdv.StatsOptions()
    generators = stats_impl.get_generators(options, in_memory=True)
    jobs = max(1, min(scale.n_jobs or os.cpu_count() or 1, data.num_rows // _MIN_ROWS_PER_WORKER))
    bounds = _slices(data.num_rows, jobs)
    _SHARED.update(data=data, options=options, generators=generators)
    try:
        if jobs == 1:
            partials = [_partial_statistics(bounds[0])]
        else:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                partials = pool.map(_partial_statistics, bounds)
    finally:
        _SHARED.clear()
    merged = [
        generator.merge_accumulators(list(parts))
        for generator, parts in zip(generators, zip(*partials, strict=True), strict=True)
    ]
    return stats_impl.extract_statistics_output(merged, generators)


def _slices(rows: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous (start, stop) row ranges covering ``rows``."""
    edges = [rows * index // parts for index in range(parts + 1)]
    return list(itertools.pairwise(edges))


def _partial_statistics(bounds: tuple[int, int]) -> list[Any]:
    """TFDV accumulators of one slice of the shared table (runs in a worker process)."""
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.arrow import table_util

    start, stop = bounds
    data: pa.Table = _SHARED["data"]
    batch = data.slice(start, stop - start).combine_chunks().to_batches()
    record_batch = table_util.CanonicalizeRecordBatch(_single_batch(batch, data))
    return stats_impl.generate_partial_statistics_in_memory(
        record_batch, _SHARED["options"], _SHARED["generators"]
    )


def _single_batch(batches: list[pa.RecordBatch], data: pa.Table) -> pa.RecordBatch:
    """The one RecordBatch of a combined slice (an empty one if the slice has no rows)."""
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
