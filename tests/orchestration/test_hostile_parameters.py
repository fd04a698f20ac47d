"""Bad values for the KFP and Vertex commands fail with exit code 2 before a single request is sent.

The fakes record every request, the health check included: an empty record proves nothing was
looked up, let alone created.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kfp_cicd.cli import main

REPO = Path(__file__).resolve().parents[2]
VERTEX_SPEC = REPO / "compiled" / "vertex" / "training_pipeline.yaml"
GOOD = [
    "--param",
    "train_data=s3://data/train.csv",
    "--param",
    "eval_data=s3://data/eval.csv",
    "--param",
    "mlflow_tracking_uri=http://mlflow:5000",
    "--param",
    "label_column=default",
    "--param",
    "model_name=credit-default",
]


def with_params(*extra: str) -> list[str]:
    """GOOD's --param pairs with ``extra`` (options or --param pairs) overriding them by key."""
    given = {item.split("=", 1)[0] for item in extra if "=" in item}
    kept = [
        item
        for pair in zip(GOOD[::2], GOOD[1::2], strict=True)
        if pair[1].split("=", 1)[0] not in given
        for item in pair
    ]
    return [*kept, *extra]


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


BAD_RUN_OPTIONS = [
    (["--param", "train_data=ftp://host/train.csv"], "unsupported scheme 'ftp://'"),
    (["--param", "canary_traffic_percent=0"], "canary_traffic_percent 0 is not valid"),
    (["--param", "namespace=Team_A"], "namespace 'Team_A' is not valid"),
    (["--param", "model_name=fraud/../x"], "no spaces, '/' or ':'"),
    (["--param", "model_name=Fraud Model v2"], "no spaces, '/' or ':'"),
    (["--param", "mlflow_tracking_uri=mlflow:5000"], "unsupported scheme 'mlflow:'"),
    (["--param", "serving_memory=2 GB"], "Kubernetes quantity"),
    (["--pipeline-root", "/home/me/runs"], "cannot read a local path"),
    (["--service-account", "Pipeline Runner"], "--service-account 'Pipeline Runner' is not valid"),
    (["--experiment", "ci\nINJECTED"], "control character"),
]


def test_kfp_submit_refuses_bad_values_before_contacting_the_api(kfp_api, capsys) -> None:
    for extra, fragment in BAD_RUN_OPTIONS:
        code, err = cli(
            capsys, "submit", "--host", kfp_api.url, "--pipeline", "kfp-cicd-training", *with_params(*extra)
        )
        assert code == 2 and fragment in err, err
    assert kfp_api.requests == []


BAD_CADENCES = [
    (["--cron", "61 3 * * *"], "minute field '61': values must be in 0..59"),
    (["--cron", "0 0 3 * * 7"], "day of week field '7': values must be in 0..6"),  # robfig: 0-6
    (["--cron", "0 0 3 * * MON#2"], "day of week field 'MON#2'"),
    (["--cron", "@daily"], "needs 5 fields"),
    (["--cron", "0 3 * * *", "--start", "tomorrow"], "--start 'tomorrow' is not valid"),
    (["--every", "5s"], "shorter than one minute"),
]


def test_kfp_schedule_refuses_bad_cadences_before_contacting_the_api(kfp_api, capsys) -> None:
    for cadence, fragment in BAD_CADENCES:
        code, err = cli(
            capsys, "schedule", "--host", kfp_api.url, "--pipeline", "kfp-cicd-training", *GOOD, *cadence
        )
        assert code == 2 and fragment in err, err
    assert kfp_api.requests == []


def test_kfp_upload_refuses_bad_connection_values(kfp_api, capsys) -> None:
    spec = str(REPO / "compiled" / "kubeflow" / "training_pipeline.yaml")
    for extra, fragment in (
        (["--namespace", "Team_A"], "--namespace 'Team_A' is not valid"),
        (["--ui-host", "kubeflow.example.com"], "--ui-host"),
        (["--pipeline-name", "x" * 300], "at most 256"),
    ):
        code, err = cli(capsys, "upload", "--host", kfp_api.url, *extra, "--spec", spec)
        assert code == 2 and fragment in err, err
    assert kfp_api.requests == []
    code, err = cli(capsys, "upload", "--host", "localhost:8080/../etc", "--spec", spec)
    assert code == 2 and "--host 'localhost:8080/../etc' is not valid" in err


def _vertex(server) -> list[str]:
    return [
        "--project",
        server.project,
        "--region",
        server.region,
        "--api-endpoint",
        server.url,
        "--anonymous",
        "--spec",
        str(VERTEX_SPEC),
    ]


BAD_VERTEX_OPTIONS = [
    (
        ["--pipeline-root", "gs://my-bucket/runs", "--param", "canary_traffic_percent=150"],
        "canary_traffic_percent 150 is not valid",
    ),
    (["--pipeline-root", "s3://my-bucket/runs"], "is not a gs://bucket/path URI"),
    (["--pipeline-root", "gs://my-bucket/runs", "--service-account", "default"], "service account's e-mail"),
    (["--pipeline-root", "gs://my-bucket/runs", "--job-id", "Job_1"], "--job-id 'Job_1' is not valid"),
    (["--pipeline-root", "gs://my-bucket/runs", "--network", "default"], "projects/NUMBER/global/networks"),
]


def test_vertex_submit_refuses_bad_values_before_any_request(vertex_api, capsys) -> None:
    vertex_api.buckets.add("my-bucket")
    for extra, fragment in BAD_VERTEX_OPTIONS:
        code, err = cli(capsys, "vertex", "submit", *_vertex(vertex_api), *with_params(*extra))
        assert code == 2 and fragment in err, err
    targets = (
        (["--project", "My Project", "--region", "europe-west4"], "--project 'My Project'"),
        (["--project", "my-proj", "--region", "us-central1-a"], "not a zone"),
    )
    for target, fragment in targets:
        code, err = cli(
            capsys, "vertex", "schedule", "list", *target, "--api-endpoint", vertex_api.url, "--anonymous"
        )
        assert code == 2 and fragment in err, err
    assert vertex_api.requests == []


def test_vertex_schedule_refuses_bad_cron_and_parameters_before_any_request(vertex_api, capsys) -> None:
    for extra, fragment in (
        (["--cron", "0 25 * * *"], "hour field '25'"),
        (["--cron", "TZ=Mars/Olympus 0 3 * * *"], "not an IANA zone"),
        (["--cron", "0 3 * * MON-FOO"], "day of week field 'MON-FOO'"),
        (["--cron", "0 3 * * *", "--end", "2026-01-01"], "give the time zone"),
        # typed before the existing schedules are listed
        (["--cron", "0 3 * * *", "--param", "epochs=ten"], "epochs is an integer"),
    ):
        code, err = cli(
            capsys,
            "vertex",
            "schedule",
            *_vertex(vertex_api),
            "--pipeline-root",
            "gs://my-bucket/runs",
            *with_params(*extra),
        )
        assert code == 2 and fragment in err, err
    assert vertex_api.requests == []
