"""The value checks of kfp_cicd.parameter_validation, and the local CLI commands refusing bad values
before they create anything (the KFP and Vertex commands are in tests/orchestration)."""

from __future__ import annotations

import re
from contextlib import suppress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kfp_cicd.cli import main
from kfp_cicd.errors import DataError
from kfp_cicd.parameter_validation import (
    check_canary_percent,
    check_cron,
    check_dns_label,
    check_dns_subdomain,
    check_image_registry,
    check_image_tag,
    check_model_name,
    check_pipeline_arguments,
    check_pipeline_root,
    check_quantity,
    check_server_url,
    check_table_location,
    check_timestamp,
    check_tracking_uri,
    require_text,
)
from kfp_cicd.pipelines.parameters import RULES

RFC_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@pytest.mark.parametrize(
    "value",
    [
        "s3://data/train.csv",
        "gs://my-bucket/a/b.parquet",
        "train.csv.gz",
        "/abs/path/t.CSV",
        "file:///tmp/t.csv",
        "C:/data/t.csv",
    ],
)
def test_table_locations_accepted(value: str) -> None:
    assert check_table_location(value, "train_data") == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("ftp://host/t.csv", "unsupported scheme 'ftp://'"),
        ("javascript:alert(1)//t.csv", "looks like a URL without '//'"),
        ("s3:/bucket/t.csv", "looks like a URL without '//'"),
        ("gs://Bad_Bucket/t.csv", "is not a bucket name"),
        ("gs://bucket.csv", "names a bucket, not a file"),
        ("s3://bucket/", "names a bucket, not a file"),
        ("s3://data/train.json", "must end with one of .csv.gz, .csv, .parquet"),
        ("t.csv\n--param x=1", "control character"),
        (" t.csv", "leading or trailing spaces"),
        ("", "non-empty"),
        ("a" * 3000 + ".csv", "at most 2048"),
    ],
)
def test_table_locations_refused(value: str, fragment: str) -> None:
    with pytest.raises(DataError, match=re.escape(fragment)) as caught:
        check_table_location(value, "train_data")
    assert str(caught.value).startswith("train_data ")


def test_pipeline_roots_must_be_object_stores() -> None:
    assert check_pipeline_root("gs://bucket/runs") == "gs://bucket/runs"
    for bad, fragment in (("/tmp/runs", "cannot read a local path"), ("http://x/runs", "unsupported scheme")):
        with pytest.raises(DataError, match=fragment):
            check_pipeline_root(bad)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("http://mlflow.mlflow:5000", True),
        ("https://mlflow.example.com/", True),
        ("sqlite:///m.db", True),
        ("databricks", True),
        ("postgresql+psycopg2://u@db/mlflow", True),
        ("./mlruns", True),
        ("ftp://mlflow", False),
        ("http://", False),
        ("http://user:secret@mlflow:5000", False),
        ("https://mlflow:99999", False),
        ("gopher://x", False),
    ],
)
def test_tracking_uris(value: str, ok: bool) -> None:
    if ok:
        check_tracking_uri(value)
    else:
        with pytest.raises(DataError, match="mlflow_tracking_uri"):
            check_tracking_uri(value)


@pytest.mark.parametrize(
    "value", ["postgresql://bob:s3cret-pw@db:5432/mlflow", "http://bob:s3cret-pw@mlflow:5000"]
)
def test_a_password_in_a_tracking_uri_is_refused_without_being_repeated(value: str) -> None:
    with pytest.raises(DataError, match="mlflow_tracking_uri") as refused:
        check_tracking_uri(value)
    assert "s3cret-pw" not in str(refused.value)
    assert "***@" in str(refused.value)


def test_server_urls() -> None:
    assert check_server_url("http://localhost:8080/", "--host") == "http://localhost:8080"
    assert check_server_url("http://[::1]:8888", "--host") == "http://[::1]:8888"
    for bad in ("localhost:8080", "http://bad host", "file:///etc/passwd", "http://h:0", "https://"):
        with pytest.raises(DataError, match="--host"):
            check_server_url(bad, "--host")


@pytest.mark.parametrize(
    ("expression", "seconds", "ok"),
    [
        ("0 3 * * *", False, True),
        ("*/15 9-17 * JAN-MAR MON-FRI", False, True),
        ("0 0 1,15 * 7", False, False),
        ("0 0 3 ? * *", True, True),
        ("0 3 * * *", True, False),
        ("60 3 * * *", False, False),
        ("0 24 * * *", False, False),
        ("0 3 0 * *", False, False),
        ("0 3 * 13 *", False, False),
        ("0 3 * * FUNDAY", False, False),
        ("0 3 * * 5-1", False, False),
        ("*/0 3 * * *", False, False),
        ("0 3 L * *", False, False),
        ("@daily", False, False),
        ("0 3 * * * rm -rf /", False, False),
    ],
)
def test_cron_fields(expression: str, seconds: bool, ok: bool) -> None:
    kwargs = {"seconds": seconds, "question_mark": seconds}
    if ok:
        assert check_cron(expression, **kwargs) == expression
    else:
        with pytest.raises(DataError, match="--cron"):
            check_cron(expression, **kwargs)
    assert check_cron("0 0 * * 7", sunday_seven=True)  # unix cron (Vertex): 7 is Sunday too


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (1, True),
        (100, True),
        ("50", True),
        (0, False),
        (101, False),
        (-5, False),
        (True, False),
        (10.5, False),
        ("ten", False),
    ],
)
def test_canary_percent(value: object, ok: bool) -> None:
    if ok:
        assert 1 <= check_canary_percent(value) <= 100
    else:
        with pytest.raises(DataError, match="canary_traffic_percent"):
            check_canary_percent(value)


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (
            lambda v: check_dns_label(v, "namespace"),
            ["kfp-cicd", "a", "0team", "a" * 63],
            ["Team", "team_a", "-team", "team-", "a" * 64, "team.a", ""],
        ),
        (lambda v: check_dns_label(v, "name", start_with_letter=True), ["fraud-detector"], ["0fraud"]),
        (
            lambda v: check_dns_subdomain(v, "service_account"),
            ["mlflow-credentials", "a.b-c"],
            ["Mlflow", "a..b", "a" * 254, "svc/../x"],
        ),
        (
            check_model_name,
            ["fraud-detector", "Fraud_Model.v2"],
            ["a/b", "x:1", "..", "---", "a\x00b", "Fraud Model v2"],
        ),
        (
            check_image_registry,
            ["ghcr.io/org", "registry.local:5000/team/sub"],
            ["GHCR.io/org", "https://ghcr.io/org", "ghcr.io/org name", "ghcr.io//x"],
        ),
        (check_image_tag, ["0.1.0", "sha-0123abc", "v1_2"], ["-x", ".x", "a" * 129, "a:b", "latest tag"]),
        (
            lambda v: check_quantity(v, "serving_memory"),
            ["2Gi", "500m", "1", "1.5", "1e3"],
            ["2 GB", "2GB", "-1", "Gi", "1..5"],
        ),
        (
            lambda v: check_timestamp(v, "--start"),
            ["2026-01-31T03:00:00Z", "2026-01-31T03:00:00+01:00"],
            ["2026-01-31", "tomorrow", "2026-13-01T00:00:00Z"],
        ),
    ],
)
def test_names_and_references(check, good: list[str], bad: list[str]) -> None:
    for value in good:
        check(value)
    for value in bad:
        with pytest.raises(DataError):
            check(value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_a_dns_label_is_accepted_only_when_it_is_one(value: str) -> None:
    try:
        check_dns_label(value, "namespace")
    except DataError as error:
        assert "namespace" in str(error)
        assert not RFC_1123_LABEL.fullmatch(value)
    else:
        assert RFC_1123_LABEL.fullmatch(value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_checked_without_an_unexpected_exception(value: str) -> None:
    checks = (
        lambda v: check_table_location(v, "p"),
        check_tracking_uri,
        check_model_name,
        lambda v: check_cron(v),
        lambda v: check_server_url(v, "p"),
        lambda v: require_text(v, "p"),
    )
    for check in checks:
        with suppress(DataError):
            check(value)


def test_pipeline_arguments_report_every_problem_at_once() -> None:
    good = {
        "train_data": "s3://data/t.csv",
        "canary_traffic_percent": 10,
        "namespace": "kfp-cicd",
        "epochs": 3,
        "min_replicas": 1,
        "max_replicas": 2,
    }
    assert check_pipeline_arguments(good, RULES) == good
    with pytest.raises(DataError) as caught:
        check_pipeline_arguments(
            {
                "train_data": "ftp://x/t.csv",
                "canary_traffic_percent": 0,
                "namespace": "Team_A",
                "serving_memory": "2 GB",
                "model_name": "a/b",
                "deployment_mode": "Sideways",
                "min_replicas": 3,
                "max_replicas": 1,
            },
            RULES,
        )
    message = str(caught.value)
    for name in (
        "train_data",
        "canary_traffic_percent",
        "namespace",
        "serving_memory",
        "model_name",
        "deployment_mode",
        "max_replicas 1 is below min_replicas 3",
    ):
        assert name in message, message


# --- the local CLI commands --------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_run_refuses_bad_values_before_creating_its_home(tmp_path: Path, capsys) -> None:
    home = tmp_path / "home"
    for argv, fragment in (
        (["--data", "ftp://x/t.csv"], "--data 'ftp://x/t.csv' is not valid"),
        (["--tracking-uri", "gopher://x"], "--tracking-uri"),
        (["--param", "canary_traffic_percent=0", "--param", "namespace=Bad_NS"], "canary_traffic_percent"),
        (["--rows", "0"], "--rows must be at least 1"),
    ):
        code, err = _cli(capsys, "run", "--home", str(home), *argv)
        assert code == 2 and fragment in err, err
    assert not home.exists()


def test_monitor_refuses_a_bad_window_location(tmp_path: Path, capsys) -> None:
    code, err = _cli(capsys, "monitor", "--home", str(tmp_path / "home"), "--data", "day1.xlsx")
    assert code == 2 and "must end with one of" in err
    assert not (tmp_path / "home").exists()


def test_compile_refuses_bad_image_references_and_writes_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "compiled"
    for argv in (
        ["--image-registry", "https://ghcr.io/org"],
        ["--image-tag", "bad tag"],
        ["--shared-pvc", "Shared_PVC"],
    ):
        code, err = _cli(capsys, "compile", "--output-dir", str(out), *argv)
        assert code == 2 and "is not valid" in err, err
    assert not out.exists()


def test_registry_serve_and_schema_refuse_bad_values_before_contacting_anything(
    tmp_path: Path, capsys
) -> None:
    store = tmp_path / "mlflow.db"
    code, err = _cli(capsys, "registry", "show", "--model", "a/b", "--tracking-uri", f"sqlite:///{store}")
    assert code == 2 and "--model 'a/b' is not valid" in err
    code, err = _cli(capsys, "rollback", "--model", "fraud", "--tracking-uri", "ftp://mlflow")
    assert code == 2 and "--tracking-uri" in err
    assert not store.exists()
    code, err = _cli(capsys, "serve", "--model", str(tmp_path), "--http-port", "70000")
    assert code == 2 and "--http-port 70000 is not valid" in err
    schema = str(tmp_path / "s.pbtxt")
    code, err = _cli(
        capsys, "schema", "infer", "--data", "s3://bucket/t.txt", "--out", schema, "--label-column", "y"
    )
    assert code == 2 and "must end with one of" in err
    assert not (tmp_path / "s.pbtxt").exists()


def test_run_refuses_a_label_that_is_not_binary_before_anything_runs(tmp_path: Path, capsys) -> None:
    data = tmp_path / "three_classes.csv"
    data.write_text("y,x\nlow,1\nmid,2\nhigh,3\nlow,4\n")
    home = tmp_path / "home"
    code, err = _cli(capsys, "run", "--home", str(home), "--data", str(data), "--param", "label_column=y")
    assert code == 2 and "label column 'y' must hold exactly two classes" in err, err
    assert not list(home.glob("runs/*")), "a refused run leaves no run directory behind"
    code, err = _cli(capsys, "run", "--home", str(home), "--data", str(data))
    assert code == 2 and "--param label_column=NAME" in err
