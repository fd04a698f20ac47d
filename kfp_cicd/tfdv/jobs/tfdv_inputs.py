"""Input tables for the TFDV job: cheap checks before TensorFlow's import, then fast Arrow reads.

Runs in the validation (TFDV) environment and imports only the standard library, numpy and
pyarrow, so the job can reject an empty, binary, non-UTF-8, malformed or label-less file in a
second, before it spends 10-20 s importing TensorFlow. Only the head of a CSV is inspected
here (the file may be far larger than memory when the Beam path reads it); the full read by
:func:`read_table` reports problems further down the file the same way.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from table_header import header_problem

if TYPE_CHECKING:
    import pyarrow as pa

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
_HEAD_BYTES = 1 << 20
_ROWS_CHECKED = 200
_READ_BLOCK_BYTES = 64 << 20  # pyarrow infers column types from the first block: make it big
_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+)")


class InputError(Exception):
    """The request or an input file is unusable; the message names the file and the fix."""


@dataclass(frozen=True)
class TableInput:
    """An input table that passed the quick checks.

    Attributes:
        path: local path of the file.
        role: how messages name its part (``"training"``, ``"evaluation"``...).
        shown: how messages name the file (the URL a local copy was staged from).
        fmt: ``"csv"`` or ``"parquet"``.
        size_bytes: the file's size.
        columns: the column names of its header (CSV) or schema (Parquet).
    """

    path: str
    role: str
    shown: str
    fmt: str
    size_bytes: int
    columns: tuple[str, ...]

    @property
    def label(self) -> str:
        """``"<role> data <file>"``, the subject of every message about this table."""
        return f"{self.role} data {self.shown}"


def inspect_table(path_text: str, role: str, shown: str | None = None) -> TableInput:
    """Check that ``path_text`` is a non-empty CSV/Parquet table with rows; return what it holds.

    Raises:
        InputError: missing, not a file, empty, unknown suffix, binary, not UTF-8, not
            well-formed CSV, not Parquet, or without data rows.
    """
    path = Path(path_text)
    subject = f"{role} data {shown or path_text}"
    if not path.exists():
        raise InputError(f"{subject} does not exist. Check the path.")
    if not path.is_file():
        raise InputError(f"{subject} is not a file.")
    size = path.stat().st_size
    if size == 0:
        raise InputError(
            f"{subject} is empty (0 bytes). Write the CSV with a header row and at least one row."
        )
    lowered = path.name.lower()
    if lowered.endswith(CSV_SUFFIXES):
        fmt, columns = "csv", _csv_header(path, subject)
    elif lowered.endswith(PARQUET_SUFFIXES):
        fmt, columns = "parquet", _parquet_columns(path, subject)
    else:
        raise InputError(
            f"{subject} has an unsupported suffix; use one of {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}."
        )
    return TableInput(str(path), role, shown or path_text, fmt, size, columns)


def check_label(table: TableInput, label: str) -> None:
    """Training data must have the label column: without it there is nothing to train on."""
    if label not in table.columns:
        columns = ", ".join(table.columns[:20]) + (", ..." if len(table.columns) > 20 else "")
        raise InputError(
            f"{table.label} has no label column {label!r} (its columns: {columns}). "
            "Pass the right label_column or fix the file."
        )


def _read_head(path: Path, subject: str) -> tuple[bytes, bool]:
    """The first MiB of the (gunzipped) file, and whether that is the whole file."""
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as stream:
                head = stream.read(_HEAD_BYTES + 1)
        else:
            with path.open("rb") as stream:
                head = stream.read(_HEAD_BYTES + 1)
    except (OSError, EOFError) as error:
        raise InputError(
            f"{subject} cannot be read: {error}. If it is not gzip-compressed, drop the .gz suffix."
        ) from error
    return head[:_HEAD_BYTES], len(head) <= _HEAD_BYTES


def _csv_header(path: Path, subject: str) -> tuple[str, ...]:
    """Sniff the head of a CSV file: text, UTF-8, a header, consistent rows, at least one row."""
    head, complete = _read_head(path, subject)
    if b"\x00" in head[:8192]:
        raise InputError(
            f"{subject} is a binary file, not CSV text. Export the table as UTF-8 CSV "
            "with a header row, or as Parquet (.parquet)."
        )
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=complete)
    except UnicodeDecodeError as error:
        raise InputError(
            f"{subject} is not UTF-8 text (byte {error.start}: {error.reason}). "
            "Re-save the file as UTF-8 CSV."
        ) from error
    lines = text.splitlines(keepends=True)
    if not complete and len(lines) == 1:
        raise InputError(
            f"{subject}: its first line is longer than {_HEAD_BYTES >> 20} MiB, so it is "
            "not a CSV header (a huge field, or no line breaks). Check that the file "
            "really is CSV with a header row."
        )
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in the middle
    rows = [row for row in csv.reader(io.StringIO("".join(lines[: _ROWS_CHECKED + 1]))) if row]
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise InputError(
            f"{subject} has no header row and no data (it is empty or blank). "
            "Write the CSV with a header row and at least one row."
        )
    header = tuple(cell.strip() for cell in rows[0])
    _check_header(header, subject)
    if len(rows) == 1:
        raise InputError(f"{subject} has a header but no data rows. Write at least one row.")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InputError(
                f"{subject} is not well-formed CSV: row {number} has {len(row)} "
                f"fields but the header has {len(header)}. Fix the file or re-export "
                "it as CSV with a header row."
            )
    return header


def _check_header(header: tuple[str, ...], subject: str) -> None:
    """Column names must be present and unique: TFDV keys its statistics by them (the shared rule)."""
    problem = header_problem(header)
    if problem:
        raise InputError(f"{subject}: {problem}")


def _parquet_columns(path: Path, subject: str) -> tuple[str, ...]:
    """Check the Parquet magic bytes and footer; return the column names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with path.open("rb") as stream:
        start = stream.read(4)
        stream.seek(max(path.stat().st_size - 4, 0))
        end = stream.read(4)
    if path.stat().st_size < 12 or start != b"PAR1" or end != b"PAR1":
        raise InputError(
            f"{subject} is not a valid Parquet file (no PAR1 magic bytes). "
            "Re-export it as Parquet, or use the .csv suffix if it is CSV."
        )
    try:
        metadata = pq.read_metadata(path)
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"{subject} is not a valid Parquet file: {error}") from error
    group_rows = sum(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
    if metadata.num_rows != group_rows:
        raise InputError(
            f"{subject} has a corrupted Parquet footer: it claims {metadata.num_rows:,} "
            f"rows but its row groups hold {group_rows:,}. Re-export the file."
        )
    if metadata.num_rows == 0:
        raise InputError(f"{subject} has no data rows. Write at least one row.")
    return tuple(metadata.schema.to_arrow_schema().names)


# --- full reads ----------------------------------------------------------------------------------


def read_table(table: TableInput, sample_rate: float = 1.0, seed: int = 0) -> pa.Table:
    """Read the whole table into Arrow, with TFDV-compatible column types, optionally sampled.

    CSV columns get pyarrow's type inference; a column whose later values do not fit the type
    inferred from the first block is read again as float (an int column with a decimal) or as
    string (text in a numeric column), so TFDV reports the type problem as an anomaly of that
    feature instead of the read failing.
    """
    import pyarrow as pa

    data = _read_csv(table) if table.fmt == "csv" else _read_parquet(table)
    data = tfdv_compatible(data)
    if sample_rate < 1.0:
        import numpy as np

        keep = np.random.default_rng(seed).random(data.num_rows) < sample_rate
        data = data.filter(pa.array(keep))
    return data


def _read_csv(table: TableInput) -> pa.Table:
    """pyarrow's multi-threaded CSV reader, retrying columns whose values defy inference."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    forced: dict[str, pa.DataType] = {}
    while True:
        try:
            return pacsv.read_csv(
                table.path,
                read_options=pacsv.ReadOptions(block_size=_READ_BLOCK_BYTES),
                convert_options=pacsv.ConvertOptions(column_types=forced, strings_can_be_null=True),
            )
        except pa.ArrowInvalid as error:
            forced = _retype(table, str(error), forced)
        except (pa.ArrowException, OSError, EOFError) as error:
            raise InputError(f"{table.label} could not be read as CSV: {error}") from error


def _retype(table: TableInput, message: str, forced: dict[str, pa.DataType]) -> dict[str, pa.DataType]:
    """The column types to retry with after a conversion error, or InputError if none helps."""
    import pyarrow as pa

    if "invalid UTF8" in message:
        raise InputError(
            f"{table.label} is not UTF-8 text ({message.splitlines()[0]}). Re-save the file as UTF-8 CSV."
        )
    match = _CONVERSION_ERROR.search(message)
    if match is None:
        raise InputError(
            f"{table.label} is not well-formed CSV: {message.splitlines()[0]}. Fix "
            "the file or re-export it as CSV with a header row."
        )
    name = table.columns[int(match.group(1))]
    target = pa.float64() if match.group(2).startswith("int") else pa.string()
    if forced.get(name) == target or forced.get(name) == pa.string():
        raise InputError(f"{table.label}: column {name!r} cannot be read: {message.splitlines()[0]}")
    return {**forced, name: target}


def _read_parquet(table: TableInput) -> pa.Table:
    """Read a Parquet file with pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(table.path)
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"{table.label} could not be read as Parquet: {error}") from error


def tfdv_compatible(data: pa.Table) -> pa.Table:
    """Cast column types TFDV cannot take: bool -> int64; dates, times, decimals -> string."""
    import pyarrow as pa
    import pyarrow.types as t

    columns, changed = [], False
    for column in data.columns:
        kind = column.type
        if t.is_boolean(kind):
            column, changed = column.cast(pa.int64()), True
        elif t.is_null(kind):
            column, changed = pa.chunked_array([pa.nulls(len(column), pa.string())]), True
        elif t.is_dictionary(kind):
            column, changed = column.cast(kind.value_type), True
        elif t.is_temporal(kind) or t.is_decimal(kind):
            column, changed = column.cast(pa.string()), True
        columns.append(column)
    return pa.Table.from_arrays(columns, names=data.column_names) if changed else data
