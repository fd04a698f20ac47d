"""``kfp-cicd upload | submit | schedule`` through the real ``kfp.Client`` against FakeKfpApiServer."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import yaml

from kfp_cicd.cli import main

REPO = Path(__file__).resolve().parents[2]
KUBEFLOW_SPEC = REPO / "compiled" / "kubeflow" / "training_pipeline.yaml"
PIPELINE = "kfp-cicd-training"
REVISION = "0123456789abcdef0123456789abcdef01234567"
REQUIRED = [
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


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def upload(capsys: pytest.CaptureFixture, host: str, *extra: str) -> tuple[int, dict, str]:
    code, out, err = cli(
        capsys, "upload", "--host", host, "--spec", str(KUBEFLOW_SPEC), "--output", "json", *extra
    )
    payload = json.loads(out)
    return code, payload[0] if isinstance(payload, list) else payload, err


def test_first_upload_creates_pipeline_then_new_version_then_nothing(kfp_api, capsys) -> None:
    code, first, err = upload(capsys, kfp_api.url)
    assert code == 0, err
    assert first["status"] == "created" and first["pipeline"] == PIPELINE
    assert first["version"] == f"rev-{REVISION[:12]}"
    uploads = kfp_api.find("POST", "/pipelines/upload")
    assert [r.path for r in uploads] == [
        "/apis/v2beta1/pipelines/upload",
        "/apis/v2beta1/pipelines/upload_version",
    ]
    assert uploads[0].query["name"] == [PIPELINE]
    assert "Validate data (TFDV)" in uploads[0].query["description"][0]  # the UI shows the description
    assert (
        b"mlflow_tracking_uri" in uploads[0].body and b"platforms" in uploads[0].body
    )  # both documents sent
    assert uploads[1].query["name"] == [first["version"]]
    assert uploads[1].query["pipelineid"] == [first["pipeline_id"]]

    code, again, err = upload(capsys, kfp_api.url)
    assert code == 0 and again["status"] == "unchanged" and again["version_id"] == first["version_id"]
    assert "nothing to upload" in err
    assert len(kfp_api.find("POST", "/pipelines/upload")) == 2  # no new request

    code, newer, _ = upload(
        capsys, kfp_api.url, "--revision", "fedcba9876543210fedcba9876543210fedcba98", "--semver", "1.4.0"
    )
    assert code == 0 and newer["status"] == "new-version" and newer["version"] == "1.4.0-fedcba987654"
    assert kfp_api.find("POST", "/pipelines/upload_version")[-1].query["name"] == ["1.4.0-fedcba987654"]
    assert [v["display_name"] for v in kfp_api.versions[first["pipeline_id"]]] == [
        PIPELINE,
        first["version"],
        "1.4.0-fedcba987654",
    ]


def test_submit_types_parameters_and_wait_reports_success(kfp_api, capsys) -> None:
    assert upload(capsys, kfp_api.url)[0] == 0
    code, out, err = cli(
        capsys,
        "submit",
        "--host",
        kfp_api.url,
        "--pipeline",
        PIPELINE,
        *REQUIRED,
        "--param",
        "epochs=3",
        "--param",
        "learning_rate=0.01",
        "--param",
        "seed=7",
        "--experiment",
        "ci",
        "--wait",
        "--poll-interval",
        "0.01",
        "--output",
        "json",
    )
    assert code == 0, err
    run = json.loads(out)
    assert run["state"] == "SUCCEEDED" and run["link"].endswith(f"/#/runs/details/{run['run_id']}")
    body = kfp_api.find("POST", "/apis/v2beta1/runs")[0].json()
    parameters = body["runtime_config"]["parameters"]
    assert parameters["epochs"] == 3 and isinstance(parameters["epochs"], int)
    assert parameters["seed"] == 7 and isinstance(parameters["seed"], int)
    assert parameters["learning_rate"] == 0.01 and isinstance(parameters["learning_rate"], float)
    assert parameters["train_data"] == "s3://data/train.csv"
    newest = kfp_api.versions[body["pipeline_version_reference"]["pipeline_id"]][-1]
    assert body["pipeline_version_reference"]["pipeline_version_id"] == newest["pipeline_version_id"]
    assert kfp_api.find("POST", "/apis/v2beta1/experiments")[0].json()["display_name"] == "ci"
    assert "RUNNING" in err and "SUCCEEDED" in err  # progress lines while waiting


def test_failed_run_exits_one_and_names_the_error(kfp_api, capsys) -> None:
    assert upload(capsys, kfp_api.url)[0] == 0
    kfp_api.run_states = ["RUNNING", "FAILED"]
    code, _, err = cli(
        capsys,
        "submit",
        "--host",
        kfp_api.url,
        "--pipeline",
        PIPELINE,
        *REQUIRED,
        "--wait",
        "--poll-interval",
        "0.01",
    )
    assert code == 1
    assert "FAILED" in err and "task train-model failed" in err


def test_bad_parameters_are_all_reported_before_anything_is_created(kfp_api, capsys) -> None:
    assert upload(capsys, kfp_api.url)[0] == 0
    code, _, err = cli(
        capsys,
        "submit",
        "--host",
        kfp_api.url,
        "--pipeline",
        PIPELINE,
        "--param",
        "epochs=three",
        "--param",
        "nonsense=1",
        "--param",
        "train_data=s3://data/x.csv",
    )
    assert code == 2
    assert "epochs is an integer parameter" in err and "unknown parameter 'nonsense'" in err
    assert "missing required parameter 'eval_data'" in err
    assert not kfp_api.find("POST", "/apis/v2beta1/runs")


def test_schedule_is_enabled_without_catchup_and_can_be_managed(kfp_api, capsys) -> None:
    assert upload(capsys, kfp_api.url)[0] == 0
    code, out, err = cli(
        capsys,
        "schedule",
        "--host",
        kfp_api.url,
        "--pipeline",
        PIPELINE,
        *REQUIRED,
        "--param",
        "epochs=4",
        "--cron",
        "0 3 * * *",
        "--output",
        "json",
    )
    assert code == 0, err
    body = kfp_api.find("POST", "/apis/v2beta1/recurringruns")[0].json()
    assert body["mode"] == "ENABLE" and body["no_catchup"] is True and body["max_concurrency"] == 1
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"  # seconds field added for KFP
    assert body["runtime_config"]["parameters"]["epochs"] == 4  # an integer, not the string "4"
    created = json.loads(out)
    rid = created["recurring_run_id"]

    code, _, err = cli(
        capsys, "schedule", "--host", kfp_api.url, "--pipeline", PIPELINE, *REQUIRED, "--every", "24h"
    )
    assert code == 6 and "already exists" in err and "--replace" in err

    code, out, _ = cli(capsys, "schedule", "disable", rid, "--host", kfp_api.url, "--output", "json")
    assert code == 0 and json.loads(out)["status"] == "DISABLED"
    assert kfp_api.find("POST", f"/recurringruns/{rid}:disable")
    code, out, _ = cli(capsys, "schedule", "enable", rid, "--host", kfp_api.url, "--output", "json")
    assert code == 0 and json.loads(out)["status"] == "ENABLED"

    code, out, _ = cli(
        capsys,
        "schedule",
        "--host",
        kfp_api.url,
        "--pipeline",
        PIPELINE,
        *REQUIRED,
        "--every",
        "24h",
        "--replace",
        "--output",
        "json",
    )
    assert code == 0
    replacement = json.loads(out)
    assert (
        kfp_api.find("POST", "/recurringruns")[-1].json()["trigger"]["periodic_schedule"]["interval_second"]
        == 86400
    )
    assert kfp_api.find("DELETE", f"/recurringruns/{rid}")  # the old one, after the new one exists
    code, out, _ = cli(capsys, "schedule", "list", "--host", kfp_api.url, "--output", "json")
    assert [s["recurring_run_id"] for s in json.loads(out)] == [replacement["recurring_run_id"]]
    code, _, _ = cli(capsys, "schedule", "delete", replacement["recurring_run_id"], "--host", kfp_api.url)
    assert code == 0 and not kfp_api.recurring_runs


def test_token_is_sent_as_bearer_and_never_printed_or_uploaded(kfp_api, capsys, monkeypatch) -> None:
    secret = "s3cr3t-token-value-0123456789"
    kfp_api.token = secret
    monkeypatch.setenv("KFP_CICD_KFP_TOKEN", secret)
    code, first, err = upload(capsys, kfp_api.url)
    assert code == 0, err
    code, out, err2 = cli(capsys, "submit", "--host", kfp_api.url, "--pipeline", PIPELINE, *REQUIRED)
    assert code == 0, err2
    assert all(r.headers.get("authorization") == f"Bearer {secret}" for r in kfp_api.requests)
    assert secret not in kfp_api.all_text()
    assert secret not in err + err2 + out + json.dumps(first)


def test_wrong_token_gives_401_message_quickly(kfp_api, capsys) -> None:
    kfp_api.token = "the-right-one"
    code, out, err = cli(
        capsys, "upload", "--host", kfp_api.url, "--token", "a-wrong-one", "--spec", str(KUBEFLOW_SPEC)
    )
    assert code == 3
    assert "401" in err and "$KFP_CICD_KFP_TOKEN" in err and "a-wrong-one" not in err + out
    assert len(kfp_api.requests) <= 2  # no retry loop on a credential that cannot work


def test_forbidden_namespace_gives_403_message(kfp_api, capsys) -> None:
    kfp_api.forbidden = True
    code, _, err = cli(
        capsys, "upload", "--host", kfp_api.url, "--namespace", "team-a", "--spec", str(KUBEFLOW_SPEC)
    )
    assert code == 3 and "403" in err and "team-a" in err and "contributor" in err
    assert not kfp_api.find("POST", "/upload")


def test_unreachable_host_is_a_clear_error(clean_env, capsys) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        code, out, err = cli(
            capsys,
            "upload",
            "--host",
            f"http://127.0.0.1:{port}",
            "--spec",
            str(KUBEFLOW_SPEC),
            "--output",
            "json",
        )
    assert code == 4
    assert "cannot reach" in err and "port-forward" in err
    assert json.loads(out)["exit_code"] == 4


def test_missing_spec_and_unknown_pipeline(kfp_api, capsys, tmp_path) -> None:
    code, _, err = cli(capsys, "upload", "--host", kfp_api.url, "--spec", str(tmp_path / "nope.yaml"))
    assert code == 2 and "kfp-cicd compile" in err
    code, _, err = cli(capsys, "submit", "--host", kfp_api.url, "--pipeline", "other", *REQUIRED)
    assert code == 5 and "kfp-cicd upload" in err


def test_dirty_tree_versions_follow_the_spec_content(kfp_api, capsys, tmp_path) -> None:
    spec = tmp_path / "training_pipeline.yaml"
    shutil.copy(KUBEFLOW_SPEC, spec)
    dirty = ["--spec", str(spec), "--revision", f"{REVISION}-dirty", "--output", "json"]
    code, out, _ = cli(capsys, "upload", "--host", kfp_api.url, *dirty)
    assert code == 0
    first = json.loads(out)[0]
    docs = list(yaml.safe_load_all(spec.read_text()))
    docs[0]["pipelineInfo"]["description"] += " (edited)"
    spec.write_text(yaml.safe_dump_all(docs))
    code, out, _ = cli(capsys, "upload", "--host", kfp_api.url, *dirty)
    assert code == 0
    second = json.loads(out)[0]
    assert second["status"] == "new-version" and second["version"] != first["version"]
    assert "-dirty-" in second["version"]
