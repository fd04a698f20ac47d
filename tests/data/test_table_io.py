"""Table I/O: round trips by suffix, fingerprints, and a DataError naming the file per fault."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import uuid
from pathlib import Path

import pandas as pd
import pytest

from kfp_cicd.data.synthetic import generate_transactions
from kfp_cicd.data.tables import file_fingerprint, read_table, write_table
from kfp_cicd.errors import DataError


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """A small frame with int, float and string columns."""
    return generate_transactions(300, seed=11)


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.parquet", "T.CSV"])
def test_round_trip_keeps_values_and_dtypes(tmp_path: Path, table: pd.DataFrame, name: str) -> None:
    location = str(tmp_path / name)
    write_table(table, location)
    pd.testing.assert_frame_equal(read_table(location), table)


def test_parquet_round_trip_is_exact(tmp_path: Path, table: pd.DataFrame) -> None:
    location = str(tmp_path / "t.parquet")
    write_table(table, location)
    pd.testing.assert_frame_equal(read_table(location), table, check_exact=True)


def test_csv_gz_is_gzip_compressed(tmp_path: Path, table: pd.DataFrame) -> None:
    path = tmp_path / "t.csv.gz"
    write_table(table, str(path))
    assert gzip.decompress(path.read_bytes()).decode("utf-8").startswith("amount,")


def test_write_creates_parents_and_leaves_no_temporary_files(tmp_path: Path, table: pd.DataFrame) -> None:
    path = tmp_path / "a" / "b" / "t.csv"
    write_table(table, str(path))
    write_table(table.head(5), str(path))  # replaces the existing file
    assert [p.name for p in path.parent.iterdir()] == ["t.csv"]
    assert len(read_table(str(path))) == 5


def test_fsspec_urls_round_trip(table: pd.DataFrame) -> None:
    location = f"memory://kfp-cicd-tests/{uuid.uuid4().hex}/t.parquet"
    write_table(table, location)
    pd.testing.assert_frame_equal(read_table(location), table)
    assert file_fingerprint(location).startswith("sha256:")


def test_fingerprint_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"x\n" + b"1\n" * 1_500_000)  # 3 MB: several chunks
    expected = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_fingerprint(str(path)) == expected
    path.write_bytes(b"x\n2\n")
    assert file_fingerprint(str(path)) != expected


def test_equal_tables_have_equal_fingerprints(tmp_path: Path, table: pd.DataFrame) -> None:
    for name in ("t.csv.gz", "t.parquet"):
        first, second = tmp_path / "one" / name, tmp_path / "two" / name
        write_table(table, str(first))
        write_table(table, str(second))
        assert file_fingerprint(str(first)) == file_fingerprint(str(second)), name


def _raises_naming(location: str | Path, fragment: str, action, *args) -> None:
    """Call ``action`` and check it raises a DataError naming ``location`` and ``fragment``."""
    with pytest.raises(DataError) as caught:
        action(*args)
    message = str(caught.value)
    assert str(location) in message
    assert fragment in message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    _raises_naming(missing, "does not exist", read_table, str(missing))
    _raises_naming(missing, "does not exist", file_fingerprint, str(missing))


def test_directory_given(tmp_path: Path, table: pd.DataFrame) -> None:
    directory = tmp_path / "data.csv"
    directory.mkdir()
    _raises_naming(directory, "is a directory", read_table, str(directory))
    _raises_naming(directory, "is a directory", file_fingerprint, str(directory))
    _raises_naming(directory, "is a directory", write_table, table, str(directory))


@pytest.mark.parametrize("name", ["empty.csv", "empty.parquet", "empty.csv.gz"])
def test_zero_byte_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.touch()
    _raises_naming(path, "empty (0 bytes)", read_table, str(path))


def test_csv_with_only_a_header(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("amount,is_fraud\n", encoding="utf-8")
    _raises_naming(path, "no data rows", read_table, str(path))


def test_csv_with_only_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("\n\n\n", encoding="utf-8")
    _raises_naming(path, "no header", read_table, str(path))


def test_parquet_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"amount": pd.Series([], dtype="float64")}).to_parquet(path)
    _raises_naming(path, "no data rows", read_table, str(path))


@pytest.mark.parametrize("name", ["t.json", "t.txt", "t", "t.csv.bz2"])
def test_unknown_suffix(tmp_path: Path, table: pd.DataFrame, name: str) -> None:
    path = tmp_path / name
    path.write_text("a\n1\n", encoding="utf-8")
    _raises_naming(path, "unknown table format", read_table, str(path))
    _raises_naming(path, "unknown table format", write_table, table, str(path))


def test_malformed_csv(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5,6\n", encoding="utf-8")
    _raises_naming(path, "not valid CSV", read_table, str(path))


def test_csv_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("merchant,amount\ncafé,1.0\n".encode("latin-1"))
    _raises_naming(path, "not UTF-8", read_table, str(path))


def test_parquet_bytes_named_csv(tmp_path: Path, table: pd.DataFrame) -> None:
    path = tmp_path / "really.csv"
    table.to_parquet(path)
    _raises_naming(path, "is a Parquet file, not CSV text; name it .parquet", read_table, str(path))


def test_csv_gz_that_is_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv.gz"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    _raises_naming(path, "not a valid gzip file", read_table, str(path))


def test_truncated_csv_gz(tmp_path: Path, table: pd.DataFrame) -> None:
    path = tmp_path / "cut.csv.gz"
    write_table(table, str(path))
    path.write_bytes(path.read_bytes()[:200])
    _raises_naming(path, "not a valid gzip file", read_table, str(path))


@pytest.mark.parametrize("content", [b"a,b\n1,2\n", b"PAR1" + b"\0" * 64])
def test_invalid_parquet(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(content)
    _raises_naming(path, "not a valid Parquet file", read_table, str(path))


def test_write_refuses_an_empty_frame_or_a_non_frame(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _raises_naming(path, "no rows", write_table, pd.DataFrame({"a": []}), str(path))
    _raises_naming(path, "DataFrame", write_table, [{"a": 1}], str(path))
    assert not path.exists()


def test_write_into_a_file_as_directory(tmp_path: Path, table: pd.DataFrame) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    target = blocker / "t.csv"
    _raises_naming(target, "cannot write", write_table, table, str(target))


def test_unknown_url_scheme() -> None:
    _raises_naming(
        "nosuchscheme://bucket/t.csv", "unsupported URL scheme", read_table, "nosuchscheme://bucket/t.csv"
    )


@pytest.mark.parametrize(("url", "package"), [("gs://b/t.csv", "gcsfs"), ("s3://b/t.parquet", "s3fs")])
def test_missing_filesystem_package_is_named(url: str, package: str) -> None:
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here")
    _raises_naming(url, f"pip install {package}", read_table, url)
