"""``kfp-cicd vertex submit | schedule``: the real aiplatform SDK (REST) against FakeVertexApiServer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kfp_cicd.cli import main

REPO = Path(__file__).resolve().parents[2]
VERTEX_SPEC = REPO / "compiled" / "vertex" / "training_pipeline.yaml"
KUBEFLOW_SPEC = REPO / "compiled" / "kubeflow" / "training_pipeline.yaml"
PARAMS = [
    "--param",
    "train_data=gs://data/train.csv",
    "--param",
    "eval_data=gs://data/eval.csv",
    "--param",
    "mlflow_tracking_uri=https://mlflow.example.com",
    "--param",
    "label_column=default",
    "--param",
    "model_name=credit-default",
    "--param",
    "epochs=5",
    "--param",
    "min_roc_auc=0.75",
]


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def target(server) -> list[str]:
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


def test_submit_creates_pipeline_job_with_typed_parameters_and_waits(vertex_api, capsys) -> None:
    vertex_api.buckets.add("my-bucket")
    code, out, err = cli(
        capsys,
        "vertex",
        "submit",
        *target(vertex_api),
        "--pipeline-root",
        "gs://my-bucket/runs",
        "--service-account",
        "pipelines@my-proj.iam.gserviceaccount.com",
        "--network",
        "projects/123/global/networks/vpc",
        "--labels",
        "team=fraud",
        *PARAMS,
        "--wait",
        "--poll-interval",
        "0.01",
        "--output",
        "json",
    )
    assert code == 0, err
    job = json.loads(out)
    assert job["state"] == "PIPELINE_STATE_SUCCEEDED"
    assert job["job_id"].startswith("kfp-cicd-training-0123456789ab-")
    create = vertex_api.find("POST", "/pipelineJobs")
    assert len(create) == 1
    assert create[0].path == "/v1/projects/my-proj/locations/europe-west4/pipelineJobs"
    assert create[0].query["pipelineJobId"] == [job["job_id"]]
    body = create[0].json()
    values = body["runtimeConfig"]["parameterValues"]
    assert values["epochs"] == 5 and not isinstance(values["epochs"], str)
    assert values["min_roc_auc"] == 0.75 and values["train_data"] == "gs://data/train.csv"
    assert body["runtimeConfig"]["gcsOutputDirectory"] == "gs://my-bucket/runs"
    assert body["serviceAccount"] == "pipelines@my-proj.iam.gserviceaccount.com"
    assert body["network"] == "projects/123/global/networks/vpc"
    assert body["labels"] == {"team": "fraud", "kfp-cicd-revision": "0123456789ab"}
    assert (
        "platforms" not in body["pipelineSpec"]
        and body["pipelineSpec"]["pipelineInfo"]["name"] == "kfp-cicd-training"
    )
    assert vertex_api.find("GET", f"/pipelineJobs/{job['job_id']}")
    assert not vertex_api.find("POST", "/storage/v1/b")  # nothing created behind the user's back
    assert "console.cloud.google.com" in job["link"] and "PIPELINE_STATE_RUNNING" in err


def test_failed_job_exits_one(vertex_api, capsys) -> None:
    vertex_api.buckets.add("my-bucket")
    vertex_api.job_states = ["PIPELINE_STATE_RUNNING", "PIPELINE_STATE_FAILED"]
    code, _, err = cli(
        capsys,
        "vertex",
        "submit",
        *target(vertex_api),
        "--pipeline-root",
        "gs://my-bucket/r",
        *PARAMS,
        "--wait",
        "--poll-interval",
        "0.01",
    )
    assert code == 1 and "PIPELINE_STATE_FAILED" in err and "some tasks failed" in err


def test_missing_bucket_is_an_error_unless_create_bucket(vertex_api, capsys) -> None:
    code, _, err = cli(
        capsys, "vertex", "submit", *target(vertex_api), "--pipeline-root", "gs://absent/r", *PARAMS
    )
    assert code == 5 and "gs://absent" in err and "--create-bucket" in err
    assert not vertex_api.find("POST", "/pipelineJobs") and not vertex_api.find("POST", "/storage/v1/b")
    code, _, err = cli(
        capsys,
        "vertex",
        "submit",
        *target(vertex_api),
        "--pipeline-root",
        "gs://absent/r",
        *PARAMS,
        "--create-bucket",
    )
    assert code == 0, err
    created = vertex_api.find("POST", "/storage/v1/b")
    assert len(created) == 1 and created[0].json()["name"] == "absent"
    assert created[0].json()["location"].lower() == "europe-west4" and "creating bucket" in err


def test_kubeflow_two_document_spec_is_refused(vertex_api, capsys) -> None:
    code, _, err = cli(
        capsys,
        "vertex",
        "submit",
        "--project",
        "my-proj",
        "--region",
        "europe-west4",
        "--api-endpoint",
        vertex_api.url,
        "--anonymous",
        "--spec",
        str(KUBEFLOW_SPEC),
        "--pipeline-root",
        "gs://my-bucket/r",
        *PARAMS,
    )
    assert code == 2 and "2 YAML documents" in err and "compiled/vertex" in err
    assert not vertex_api.requests


@pytest.mark.parametrize(
    ("status", "hint"), [(401, "application-default login"), (403, "roles/aiplatform.user")]
)
def test_refused_credentials_are_a_clear_error(vertex_api, capsys, status, hint) -> None:
    vertex_api.buckets.add("my-bucket")
    vertex_api.deny = status
    code, _, err = cli(
        capsys, "vertex", "submit", *target(vertex_api), "--pipeline-root", "gs://my-bucket/r", *PARAMS
    )
    assert code == 3 and hint in err
    if status == 403:  # a 401 makes the SDK try to refresh (anonymous) credentials first; that fails
        assert "403" in err


def test_schedule_create_replace_pause_resume_delete(vertex_api, capsys) -> None:
    vertex_api.buckets.add("my-bucket")
    common = [*target(vertex_api), "--pipeline-root", "gs://my-bucket/s", *PARAMS]
    code, out, err = cli(
        capsys,
        "vertex",
        "schedule",
        *common,
        "--cron",
        "TZ=Europe/Berlin 0 3 * * *",
        "--max-concurrent",
        "1",
        "--max-runs",
        "30",
        "--name",
        "nightly",
        "--output",
        "json",
    )
    assert code == 0, err
    first = json.loads(out)
    body = vertex_api.find("POST", "/schedules")[0].json()
    assert body["cron"] == "TZ=Europe/Berlin 0 3 * * *" and body["displayName"] == "nightly"
    assert int(body["maxConcurrentRunCount"]) == 1 and int(body["maxRunCount"]) == 30
    request = body["createPipelineJobRequest"]
    assert request["parent"] == "projects/my-proj/locations/europe-west4"
    assert request["pipelineJob"]["runtimeConfig"]["parameterValues"]["epochs"] == 5

    code, _, err = cli(capsys, "vertex", "schedule", *common, "--cron", "0 4 * * *", "--name", "nightly")
    assert code == 6 and "--replace" in err
    code, out, err = cli(
        capsys,
        "vertex",
        "schedule",
        *common,
        "--cron",
        "0 4 * * *",
        "--name",
        "nightly",
        "--replace",
        "--output",
        "json",
    )
    assert code == 0, err
    second = json.loads(out)
    assert list(vertex_api.schedules) == [second["resource_name"]]  # old one deleted after the new exists
    assert vertex_api.find("DELETE", first["resource_name"])

    base = [
        "--project",
        vertex_api.project,
        "--region",
        vertex_api.region,
        "--api-endpoint",
        vertex_api.url,
        "--anonymous",
        "--output",
        "json",
    ]
    code, out, _ = cli(capsys, "vertex", "schedule", "pause", second["schedule_id"], *base)
    assert code == 0 and json.loads(out)["state"] == "PAUSED"
    code, out, _ = cli(capsys, "vertex", "schedule", "resume", second["schedule_id"], *base)
    assert code == 0 and json.loads(out)["state"] == "ACTIVE"
    assert vertex_api.find("POST", ":resume")[0].json() in (None, {})  # no catch-up requested
    code, out, _ = cli(capsys, "vertex", "schedule", "list", *base)
    assert [s["name"] for s in json.loads(out)] == ["nightly"]
    code, _, _ = cli(capsys, "vertex", "schedule", "delete", second["schedule_id"], *base)
    assert code == 0 and not vertex_api.schedules


def test_bad_cron_time_zone_is_refused_before_any_request(vertex_api, capsys) -> None:
    code, _, err = cli(
        capsys,
        "vertex",
        "schedule",
        *target(vertex_api),
        "--pipeline-root",
        "gs://b/s",
        *PARAMS,
        "--cron",
        "TZ=Mars/Olympus 0 3 * * *",
    )
    assert code == 2 and "IANA" in err and not vertex_api.requests
