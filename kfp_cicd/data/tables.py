"""Reading and writing data tables (CSV, gzipped CSV, Parquet), locally or on object storage.

Every component reads its input through :func:`read_table`, so a bad file fails once, early, and
with a message that names the file, says what is wrong with it and what to do, instead of a pandas
or pyarrow traceback deep inside training. Locations are local paths or fsspec URLs (``gs://``,
``s3://``, ...); the format follows from the suffix. :func:`file_fingerprint` hashes the bytes of
a table so that a trained model can record exactly which data it was trained on.

Hostile files are refused with a :class:`DataError` rather than read into memory: CSV bytes are
checked as they stream into the parser (:class:`_CsvGuard`: UTF-8 only, no NUL byte, no line longer
than :data:`MAX_LINE_BYTES`, unique named columns), and a Parquet footer is checked before any data
is decoded (row counts consistent, the table it claims fits in memory). :func:`check_table_file`
runs the same checks without building a frame, for callers that hand the file to another reader.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from kfp_cicd.errors import DataError
from kfp_cicd.tfdv.jobs.table_header import header_problem

CSV = "csv"
PARQUET = "parquet"

# Suffix (lower case) -> (format, compression); longest suffixes first.
SUFFIXES: tuple[tuple[str, str, str | None], ...] = (
    (".csv.gz", CSV, "gzip"),
    (".csv", CSV, None),
    (".parquet", PARQUET, None),
)

# fsspec protocol -> the package that implements it, for the "install this" message.
FILESYSTEM_PACKAGES: dict[str, str] = {
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "s3": "s3fs",
    "s3a": "s3fs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "hf": "huggingface_hub",
}

_CHUNK_BYTES = 1 << 20

#: The longest line (one CSV row, or one field of it) a table may have: 16 MiB. No row of tabular
#: training data comes near it; a file that does holds a blob, not a table, and reading it on would
#: only exhaust memory. (Python's csv module stops at 128 KiB per field.)
MAX_LINE_BYTES = 16 << 20

# Byte-order marks of encodings that are not UTF-8 (UTF-32 first: its LE mark starts like UTF-16's).
_FOREIGN_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
# Leading bytes of binary formats that are sometimes misnamed .csv.
_MAGIC_NAMES: tuple[tuple[bytes, str, str], ...] = (
    (b"PAR1", "a Parquet file", "name it .parquet"),
    (b"\x1f\x8b", "gzip-compressed", "name it .csv.gz"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook?)", "export the sheet as UTF-8 CSV"),
)


@dataclass(frozen=True)
class _Location:
    """A table location resolved to a filesystem, a path on it, and the table format."""

    text: str
    fs: Any
    path: str
    fmt: str
    compression: str | None

    @property
    def is_local(self) -> bool:
        """Whether the location is on the local filesystem (enables atomic writes)."""
        return self.fs is None


def read_table(location: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read the CSV (UTF-8, optionally ``.csv.gz``) or Parquet table at ``location``.

    ``columns`` reads only those columns (each must exist), e.g. just the label.

    Raises :class:`DataError` naming the file when it is missing, a directory, empty (no bytes or
    no rows), of an unknown suffix, not valid CSV/Parquet, not UTF-8 encoded, holds a NUL byte, a
    line longer than :data:`MAX_LINE_BYTES`, duplicate or unnamed columns, or (Parquet) a footer
    whose row counts disagree or whose table would not fit in memory.
    """
    where = _resolve(location)
    _require_readable_file(where)
    with _open(where, "rb") as handle:
        if where.fmt == CSV:
            frame = _parse_csv(where, handle, columns)
        else:
            frame = _parse_parquet(where, handle, columns)
    if frame.empty:
        raise DataError(
            f"{where.text} has no data rows (columns: {list(frame.columns)}); "
            "point the pipeline at a table with at least one row"
        )
    return frame


def check_table_file(location: str, *, memory_check: bool = True) -> None:
    """Check a table file as :func:`read_table` would, without building a frame.

    CSV: streamed once through the same checks (UTF-8, no NUL byte, no over-long line, unique
    named header columns); Parquet: the footer's row counts, and (``memory_check``) that the
    table it claims fits in this machine's memory. For callers that give the file to another
    reader (the TFDV job), so a hostile file fails here with the same message.

    Raises:
        DataError: naming the file, what is wrong and what to do.
    """
    where = _resolve(location)
    _require_readable_file(where)
    with _open(where, "rb") as handle:
        if where.fmt == CSV:
            guard = _CsvGuard(where, handle)
            try:
                while guard.read(_CHUNK_BYTES):
                    pass
            except (OSError, EOFError, zlib.error) as exc:
                raise _unreadable(where, exc) from exc
            _check_header(where, guard.header_fields())
        else:
            _check_parquet_footer(where, _parquet_metadata(where, handle), memory_check=memory_check)


def write_table(df: pd.DataFrame, location: str) -> None:
    """Write ``df`` (without its index) as CSV (UTF-8), gzipped CSV or Parquet, by suffix.

    Parent directories are created; a local file is written to a temporary name and renamed, so
    readers never see a half-written table. An empty frame is refused because :func:`read_table`
    would refuse to read it back.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"cannot write {location}: expected a pandas DataFrame, got {type(df)!r}")
    where = _resolve(location)
    if df.empty:
        raise DataError(f"refusing to write {where.text}: the table has no rows")
    payload = _serialise(df, where)
    if where.is_local:
        _write_local_atomically(where, payload)
    else:
        _write_remote(where, payload)


def file_fingerprint(location: str) -> str:
    """``"sha256:<hex>"`` of the file's bytes, read in chunks: the table's lineage identifier."""
    where = _resolve(location, need_format=False)
    _require_readable_file(where, allow_empty=True)
    digest = hashlib.sha256()
    with _open(where, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _resolve(location: str, *, need_format: bool = True) -> _Location:
    """Split a location into filesystem, path and format; refuses unknown suffixes and schemes."""
    if not isinstance(location, (str, os.PathLike)) or not str(location).strip():
        raise DataError(f"a table location must be a non-empty path or URL, got {location!r}")
    text = str(location)
    fmt, compression = _format_of(text, required=need_format)
    if "://" not in text or text.startswith("file://"):
        local = text.removeprefix("file://")
        return _Location(text, None, str(Path(local).expanduser()), fmt, compression)
    fs, path = _remote_filesystem(text)
    return _Location(text, fs, path, fmt, compression)


def _format_of(text: str, *, required: bool) -> tuple[str, str | None]:
    """The (format, compression) that the suffix of ``text`` names."""
    lowered = text.lower()
    for suffix, fmt, compression in SUFFIXES:
        if lowered.endswith(suffix):
            return fmt, compression
    if not required:
        return "", None
    known = ", ".join(suffix for suffix, _, _ in SUFFIXES)
    raise DataError(
        f"{text}: unknown table format (suffix '{Path(text).suffix or '<none>'}'); "
        f"name the file with one of {known}"
    )


def _remote_filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and in-filesystem path for ``url``; names a missing package."""
    protocol = url.split("://", 1)[0].lower()
    try:
        import fsspec
    except ImportError as exc:
        raise DataError(f"{url}: reading URLs needs fsspec; pip install fsspec") from exc
    package = FILESYSTEM_PACKAGES.get(protocol)
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        if package is None:
            raise DataError(
                f"{url}: the '{protocol}://' filesystem is not installed ({_first_line(exc)})"
            ) from exc
        raise DataError(
            f"{url}: the '{protocol}://' filesystem needs {package}; pip install {package}"
        ) from exc
    except ValueError as exc:
        raise DataError(f"{url}: unsupported URL scheme '{protocol}://' ({exc})") from exc
    return fs, path


def _require_readable_file(where: _Location, *, allow_empty: bool = False) -> None:
    """Refuse a location that is missing, a directory, or (unless allowed) zero bytes long."""
    try:
        if where.is_local:
            path = Path(where.path)
            exists, is_dir = path.exists(), path.is_dir()
            size = path.stat().st_size if exists and not is_dir else 0
        else:
            exists = where.fs.exists(where.path)
            is_dir = exists and where.fs.isdir(where.path)
            size = where.fs.size(where.path) if exists and not is_dir else 0
    except OSError as exc:
        raise DataError(f"cannot access {where.text}: {exc}") from exc
    if not exists:
        raise DataError(f"{where.text} does not exist; check the path, or generate the data first")
    if is_dir:
        raise DataError(f"{where.text} is a directory; give the path of a table file inside it")
    if size == 0 and not allow_empty:
        raise DataError(f"{where.text} is empty (0 bytes); regenerate or re-export the table")


@contextmanager
def _open(where: _Location, mode: str) -> Iterator[IO[bytes]]:
    """Open the location's bytes, turning permission and I/O errors into :class:`DataError`."""
    opener = open if where.is_local else where.fs.open
    try:
        handle = opener(where.path, mode)
    except OSError as exc:
        raise DataError(f"cannot open {where.text}: {exc}") from exc
    with handle:
        yield handle


def _parse_csv(where: _Location, handle: IO[bytes], columns: list[str] | None = None) -> pd.DataFrame:
    """Parse UTF-8 CSV bytes (gunzipping ``.csv.gz``) into a frame, or explain why not."""
    guard = _CsvGuard(where, handle)
    try:
        frame = pd.read_csv(guard, encoding="utf-8", usecols=columns)
    except UnicodeDecodeError as exc:  # the guard decodes first; kept for a parser-side surprise
        raise DataError(f"{where.text} is not UTF-8 text ({exc.reason}); re-export it as UTF-8 CSV") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{where.text} has no header and no rows; it holds no CSV table") from exc
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{where.text} is not valid CSV: {_first_line(exc)}; fix or re-export the file"
        ) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(where, exc) from exc
    except ValueError as exc:  # usecols names a column the file lacks
        if columns is None:
            raise
        raise DataError(
            f"{where.text} lacks column(s) {_missing(columns, guard.header_fields())}; its "
            f"columns are {guard.header_fields()}"
        ) from exc
    _check_header(where, guard.header_fields(), None if columns else len(frame.columns))
    return frame


def _missing(wanted: list[str], present: list[str]) -> list[str]:
    return [name for name in wanted if name not in present]


def _unreadable(where: _Location, exc: BaseException) -> DataError:
    """The error for an I/O or decompression failure while streaming a CSV file."""
    if where.compression is None:
        return DataError(f"cannot read {where.text}: {exc}")
    return DataError(
        f"{where.text} is not a valid gzip file ({exc}); re-compress it with gzip, "
        "or drop the .gz suffix if it is plain CSV"
    )


class _CsvGuard(io.RawIOBase):
    """The (gunzipped) bytes of a CSV file, checked as they stream to the parser.

    Each chunk is decoded as UTF-8 and searched for NUL bytes and over-long lines before the
    parser sees it, so a hostile file stops with a :class:`DataError` naming the line, and never
    more than :data:`MAX_LINE_BYTES` of one line is buffered. The first line is kept for
    :meth:`header_fields` (pandas renames duplicate and empty column names instead of refusing).
    """

    def __init__(self, where: _Location, handle: IO[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> None:
        super().__init__()
        self._where = where
        self._raw: IO[bytes] = (
            gzip.GzipFile(fileobj=handle, mode="rb") if where.compression == "gzip" else handle
        )
        self._limit = max_line_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._lines = 0  # complete lines before the current chunk
        self._open_line = 0  # bytes of the line still open at the end of the last chunk
        self._first_line = bytearray()
        self._first_line_done = False
        self._started = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next checked chunk (never more than the line limit)."""
        data = self._raw.read(min(len(buffer), self._limit))
        if not self._started:
            self._check_start(data)
        self._check(data, final=not data)
        buffer[: len(data)] = data
        return len(data)

    def header_fields(self) -> list[str]:
        """The first line parsed as CSV (UTF-8, BOM dropped): the header's column names."""
        text = bytes(self._first_line).decode("utf-8-sig", errors="replace")
        try:
            return next(csv.reader([text]), [])
        except csv.Error:  # e.g. a quoted line break: leave the names to the parser
            return []

    def _check_start(self, data: bytes) -> None:
        """Refuse UTF-16/32 byte-order marks and binary formats named .csv, by their first bytes."""
        self._started = bool(data)
        for bom, encoding in _FOREIGN_BOMS:
            if data.startswith(bom):
                raise DataError(
                    f"{self._where.text} is {encoding} text (it starts with a {encoding} "
                    "byte-order mark); re-export it as UTF-8 CSV"
                )
        for magic, what, fix in _MAGIC_NAMES:
            if data.startswith(magic):
                raise DataError(f"{self._where.text} is {what}, not CSV text; {fix}")

    def _check(self, data: bytes, *, final: bool) -> None:
        """Refuse NUL bytes (first: they mark UTF-16 text), bytes that are not UTF-8 and lines over
        the limit; count lines."""
        nul = data.find(b"\x00")
        if nul >= 0:
            line = self._lines + data.count(b"\n", 0, nul) + 1
            raise DataError(
                f"{self._where.text} is a binary file, not CSV text: line {line} has a NUL "
                "byte (binary data, or UTF-16/UTF-32 text); re-export it as UTF-8 CSV"
            )
        try:
            self._decoder.decode(data, final=final)
        except UnicodeDecodeError as exc:
            line = self._lines + data.count(b"\n", 0, max(exc.start, 0)) + 1
            raise DataError(
                f"{self._where.text} is not UTF-8 text: line {line} has a byte that is "
                f"not UTF-8 ({exc.reason}); re-export it as UTF-8 CSV"
            ) from None
        first = _first_break(data)
        if not self._first_line_done:
            self._first_line += data if first < 0 else data[:first]
            self._first_line_done = first >= 0
        if first < 0:
            self._open_line += len(data)
        else:
            self._refuse_long_line(self._open_line + first, self._lines + 1)
            self._open_line = len(data) - max(data.rfind(b"\n"), data.rfind(b"\r")) - 1
            self._lines += data.count(b"\n")
        self._refuse_long_line(self._open_line, self._lines + 1)

    def _refuse_long_line(self, length: int, line: int) -> None:
        if length > self._limit:
            raise DataError(
                f"{self._where.text}: line {line} is longer than {self._limit >> 20} MiB (a single "
                "field that size is not tabular data, or the file has no line breaks); drop or "
                "shorten the oversized field, or check that the file really is CSV"
            )


def _first_break(data: bytes) -> int:
    """The index of the first line break (LF, or a lone CR of old Mac files) in ``data``, or -1."""
    found = [index for index in (data.find(b"\n"), data.find(b"\r")) if index >= 0]
    return min(found, default=-1)


def _check_header(where: _Location, header: list[str], parsed_columns: int | None = None) -> None:
    """Column names must be present and unique (:func:`~kfp_cicd.tfdv.jobs.table_header.header_problem`)."""
    if not header or (parsed_columns is not None and len(header) != parsed_columns):
        return  # a header with a quoted line break: pandas parsed it, trust its names
    problem = header_problem(header)
    if problem:
        raise DataError(f"{where.text}: {problem}")


def _parse_parquet(where: _Location, handle: IO[bytes], columns: list[str] | None = None) -> pd.DataFrame:
    """Parse Parquet bytes into a frame after checking its footer, or explain why not."""
    pyarrow = _import_pyarrow(where)
    metadata = _parquet_metadata(where, handle)
    _check_parquet_footer(where, metadata)
    if columns is not None:
        present = list(metadata.schema.names)
        if _missing(columns, present):
            raise DataError(
                f"{where.text} lacks column(s) {_missing(columns, present)}; its columns are {present}"
            )
    try:
        handle.seek(0)
        return pd.read_parquet(handle, engine="pyarrow", columns=columns)
    # TypeError: a corrupted pandas-metadata block in the footer names a dtype that does not exist
    # (found by tests/hostile's footer fuzzing: "data type 'objecx' not understood").
    except (pyarrow.ArrowException, OSError, ValueError, TypeError) as exc:
        raise DataError(
            f"{where.text} is not a valid Parquet file: {_first_line(exc)}; "
            "re-export it with pandas/pyarrow, or use the .csv suffix if it is CSV"
        ) from exc


def _parquet_metadata(where: _Location, handle: IO[bytes]) -> Any:
    """The Parquet footer (``FileMetaData``); a truncated or corrupted one is a DataError."""
    pyarrow = _import_pyarrow(where)
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(handle).metadata
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            f"{where.text} is not a valid Parquet file: {_first_line(exc)}; "
            "re-export it with pandas/pyarrow, or use the .csv suffix if it is CSV"
        ) from exc


def _check_parquet_footer(where: _Location, metadata: Any, *, memory_check: bool = True) -> None:
    """Refuse a footer whose row counts disagree, with duplicate columns, or too big for memory."""
    groups = [metadata.row_group(index) for index in range(metadata.num_row_groups)]
    if (
        metadata.num_rows != sum(group.num_rows for group in groups)
        or min((group.num_rows for group in groups), default=0) < 0
    ):
        raise DataError(
            f"{where.text} has a corrupted Parquet footer: it claims {metadata.num_rows:,} "
            f"rows but its row groups hold {sum(g.num_rows for g in groups):,}; re-export "
            "the file"
        )
    names = metadata.schema.to_arrow_schema().names
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(
            f"{where.text} has duplicate column names: {', '.join(duplicates)}; give "
            "every column a unique name"
        )
    if not memory_check:
        return
    needed, available = parquet_memory_bytes(metadata), available_memory_bytes()
    if needed > available:
        raise DataError(
            f"{where.text} claims {metadata.num_rows:,} rows x {len(names)} columns, at least "
            f"{needed / 2**30:,.1f} GiB in memory, but only {available / 2**30:,.1f} GiB are "
            "available: validate it with processing=beam, or split or sample the table (if it "
            "should be small, its footer is corrupted: re-export it)"
        )


def parquet_memory_bytes(metadata: Any) -> int:
    """A lower bound of the memory the table of a Parquet footer takes once decoded.

    The larger of the writer's uncompressed sizes and rows x (bytes per value): a lying footer
    cannot make it small by understating one of them.
    """
    declared = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    per_row = 0
    for field in metadata.schema.to_arrow_schema():
        try:
            per_row += max(1, field.type.bit_width // 8)
        except ValueError:  # variable width: at least an offset per value
            per_row += 4
    return max(declared, metadata.num_rows * per_row)


def available_memory_bytes() -> int:
    """Memory this process may still use: MemAvailable, capped by a cgroup (container) limit."""
    candidates = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    with suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        with suppress(OSError, ValueError):
            limit = int(Path(limit_file).read_text().strip())
            candidates.append(max(0, limit - int(Path(usage_file).read_text().strip())))
    return min(candidates)


def _serialise(df: pd.DataFrame, where: _Location) -> bytes:
    """The bytes of ``df`` in the location's format, built in memory before touching the target."""
    buffer = io.BytesIO()
    if where.fmt == CSV:
        try:
            df.to_csv(buffer, index=False, encoding="utf-8", compression=_csv_compression(where))
        except UnicodeEncodeError as exc:
            raise DataError(
                f"cannot write {where.text}: a value is not encodable as UTF-8 "
                f"({exc.reason}); clean the text columns"
            ) from exc
        return buffer.getvalue()
    pyarrow = _import_pyarrow(where)
    try:
        df.to_parquet(buffer, index=False, engine="pyarrow")
    except (pyarrow.ArrowException, TypeError, ValueError) as exc:
        raise DataError(
            f"cannot write {where.text} as Parquet: {_first_line(exc)}; "
            "give each column a single type and string column names"
        ) from exc
    return buffer.getvalue()


def _csv_compression(where: _Location) -> dict[str, Any] | None:
    """pandas' compression argument; gzip without a timestamp, so equal tables hash equally."""
    if where.compression is None:
        return None
    return {"method": where.compression, "mtime": 0}


def _write_local_atomically(where: _Location, payload: bytes) -> None:
    """Write ``payload`` beside the target, then rename it into place."""
    target = Path(where.path)
    if target.is_dir():
        raise DataError(f"cannot write {where.text}: it is a directory; give a file name")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(payload)
        os.replace(temporary, target)
    except OSError as exc:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise DataError(f"cannot write {where.text}: {exc}") from exc


def _write_remote(where: _Location, payload: bytes) -> None:
    """Upload ``payload`` to the object-store location."""
    try:
        with where.fs.open(where.path, "wb") as handle:
            handle.write(payload)
    except OSError as exc:
        raise DataError(f"cannot write {where.text}: {exc}") from exc


def _import_pyarrow(where: _Location) -> Any:
    """pyarrow, which Parquet needs; imported lazily so CSV-only images need not ship it."""
    try:
        import pyarrow
    except ImportError as exc:
        raise DataError(f"{where.text}: Parquet needs pyarrow; pip install pyarrow") from exc
    return pyarrow


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (pandas and pyarrow messages can be long)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
