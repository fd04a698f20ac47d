"""Reading and writing data tables (CSV, gzipped CSV, Parquet), locally or on object storage.

Every component reads its input through :func:`read_table`, so a bad file fails once, early, and
with a message that names the file, says what is wrong with it and what to do, instead of a pandas
or pyarrow traceback deep inside training. Locations are local paths or fsspec URLs (``gs://``,
``s3://``, ...); the format follows from the suffix. :func:`file_fingerprint` hashes the bytes of
a table so that a trained model can record exactly which data it was trained on.
"""

from __future__ import annotations

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


def read_table(location: str) -> pd.DataFrame:
    """Read the CSV (UTF-8, optionally ``.csv.gz``) or Parquet table at ``location``.

    Raises :class:`DataError` naming the file when it is missing, a directory, empty (no bytes or
    no rows), of an unknown suffix, not valid CSV/Parquet, or not UTF-8 encoded.
    """
    where = _resolve(location)
    _require_readable_file(where)
    with _open(where, "rb") as handle:
        frame = _parse_csv(where, handle) if where.fmt == CSV else _parse_parquet(where, handle)
    if frame.empty:
        raise DataError(
            f"{where.text} has no data rows (columns: {list(frame.columns)}); "
            "point the pipeline at a table with at least one row"
        )
    return frame


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
            raise DataError(f"{url}: the '{protocol}://' filesystem is not installed "
                            f"({_first_line(exc)})") from exc
        raise DataError(f"{url}: the '{protocol}://' filesystem needs {package}; "
                        f"pip install {package}") from exc
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


def _parse_csv(where: _Location, handle: IO[bytes]) -> pd.DataFrame:
    """Parse UTF-8 CSV bytes (gunzipping ``.csv.gz``) into a frame, or explain why not."""
    try:
        return pd.read_csv(handle, encoding="utf-8", compression=where.compression)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{where.text} is not UTF-8 text ({exc.reason}); "
            "re-export it as UTF-8 CSV"
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{where.text} has no header and no rows; it holds no CSV table") from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"{where.text} is not valid CSV: {_first_line(exc)}; fix or "
                        "re-export the file") from exc
    except (OSError, EOFError, zlib.error) as exc:
        if where.compression is None:
            raise DataError(f"cannot read {where.text}: {exc}") from exc
        raise DataError(f"{where.text} is not a valid gzip file ({exc}); re-compress it with gzip, "
                        "or drop the .gz suffix if it is plain CSV") from exc


def _parse_parquet(where: _Location, handle: IO[bytes]) -> pd.DataFrame:
    """Parse Parquet bytes into a frame, or explain why not."""
    pyarrow = _import_pyarrow(where)
    try:
        return pd.read_parquet(handle, engine="pyarrow")
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{where.text} is not a valid Parquet file: {_first_line(exc)}; "
                        "re-export it with pandas/pyarrow, or use the .csv suffix if it is CSV") \
            from exc


def _serialise(df: pd.DataFrame, where: _Location) -> bytes:
    """The bytes of ``df`` in the location's format, built in memory before touching the target."""
    buffer = io.BytesIO()
    if where.fmt == CSV:
        try:
            df.to_csv(buffer, index=False, encoding="utf-8", compression=_csv_compression(where))
        except UnicodeEncodeError as exc:
            raise DataError(f"cannot write {where.text}: a value is not encodable as UTF-8 "
                            f"({exc.reason}); clean the text columns") from exc
        return buffer.getvalue()
    pyarrow = _import_pyarrow(where)
    try:
        df.to_parquet(buffer, index=False, engine="pyarrow")
    except (pyarrow.ArrowException, TypeError, ValueError) as exc:
        raise DataError(f"cannot write {where.text} as Parquet: {_first_line(exc)}; "
                        "give each column a single type and string column names") from exc
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
