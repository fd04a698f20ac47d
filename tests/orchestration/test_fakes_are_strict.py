"""The fake KFP and Vertex servers refuse what the real ones refuse, and answer in their shapes."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from api_schemas import (
    KFP_PROTO_TYPES,
    KFP_REQUIRED_MESSAGES,
    VERTEX_SCHEMA,
    kfp_description,
    kfp_errors,
    kfp_models,
    vertex_errors,
)

from kfp_cicd.cli import main

REPO = Path(__file__).resolve().parents[2]
KUBEFLOW_SPEC = REPO / "compiled" / "kubeflow" / "training_pipeline.yaml"
REQUIRED = [
    *("--param", "train_data=s3://data/train.csv", "--param", "eval_data=s3://data/eval.csv"),
    *("--param", "mlflow_tracking_uri=http://mlflow:5000", "--param", "label_column=default"),
    *("--param", "model_name=credit-default"),
]


def _post(url: str, body: dict) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_vertex_excerpt_names_the_wheel_it_came_from() -> None:
    vertex = json.loads(VERTEX_SCHEMA.read_text())["source"]
    assert vertex["package"].startswith("google-api-python-client==") and "PyPI" in vertex["package"]
    assert vertex["wheel"].startswith("google_api_python_client-") and vertex["wheel"].endswith(".whl")
    assert vertex["path"] == "googleapiclient/discovery_cache/documents/aiplatform.v1.json"
    assert vertex["document"].startswith("https://aiplatform.googleapis.com/$discovery")
    assert vertex["revision"] and len(vertex["sha256"]) == 64


def test_kfp_facts_the_generator_loses_still_name_real_fields() -> None:
    """Each hand-kept entry names a field of the installed kfp_server_api with the type its loss implies."""
    models = kfp_models()
    generated = {"int64": {"str", "list[str]"}, "google.protobuf.Struct": {"object", "dict(str, object)"}}
    for (model, field), proto_type in KFP_PROTO_TYPES.items():
        assert getattr(models, model).openapi_types[field] in generated[proto_type], (model, field)
    for model, field in KFP_REQUIRED_MESSAGES:
        kind = getattr(models, model).openapi_types[field]
        assert hasattr(models, kind) and kfp_description(getattr(models, model), field) == "", (model, field)
    # Descriptions the generator kept are read from the docstrings (the "Required" rule's input).
    assert kfp_description(models.V2beta1Run, "display_name").startswith("Required input.")


def test_kfp_fake_refuses_bodies_the_api_server_refuses(kfp_api, capsys) -> None:
    recurring = f"{kfp_api.url}/apis/v2beta1/recurringruns"
    status, body = _post(
        recurring, {"display_name": "x", "trigger": {}, "mode": "ENABLE", "maxConcurency": 1}
    )
    assert status == 400 and body["code"] == 3  # INVALID_ARGUMENT, as a google.rpc.Status
    assert "'maxConcurency' was unexpected" in body["message"]  # protojson: unknown field
    assert "'max_concurrency' is a required property" in body["message"]
    assert not kfp_api.recurring_runs and len(kfp_api.rejections) == 1
    status, body = _post(
        f"{kfp_api.url}/apis/v2beta1/runs",
        {
            "display_name": "x",
            "runtime_config": {"parameters": {}},
            "pipeline_version_reference": {"pipeline_id": 7},
        },
    )
    assert status == 400 and "pipeline_id" in body["message"]

    # Through the real client and CLI: a value the server's own check refuses (api_converter.go).
    assert main(["upload", "--host", kfp_api.url, "--spec", str(KUBEFLOW_SPEC)]) == 0
    code = main(
        [
            "schedule",
            "--host",
            kfp_api.url,
            "--pipeline",
            "kfp-cicd-training",
            "--cron",
            "0 3 * * *",
            "--max-concurrency",
            "11",
            *REQUIRED,
        ]
    )
    err = capsys.readouterr().err
    assert code == 6 and "at most 10" in err and not kfp_api.recurring_runs


def test_kfp_fake_returns_the_wrapped_spec_and_submit_unwraps_it(kfp_api, capsys) -> None:
    assert main(["upload", "--host", kfp_api.url, "--spec", str(KUBEFLOW_SPEC)]) == 0
    (versions,) = kfp_api.versions.values()
    stored = versions[-1]["pipeline_spec"]
    assert set(stored) == {"pipeline_spec", "platform_spec"}  # the upload carried a platform spec
    assert "kubernetes" in stored["platform_spec"]["platforms"]
    assert (
        main(
            [
                "submit",
                "--host",
                kfp_api.url,
                "--pipeline",
                "kfp-cicd-training",
                "--param",
                "epochs=3",
                *REQUIRED,
            ]
        )
        == 0
    )
    capsys.readouterr()
    (run,) = kfp_api.runs.values()
    assert run["runtime_config"]["parameters"]["epochs"] == 3  # typed from the unwrapped spec
    assert not kfp_api.rejections


def test_kfp_fake_returns_a_bare_spec_without_platform_spec(kfp_api, tmp_path) -> None:
    single = tmp_path / "training_pipeline.yaml"
    single.write_text((REPO / "compiled" / "vertex" / "training_pipeline.yaml").read_text())
    assert main(["upload", "--host", kfp_api.url, "--spec", str(single)]) == 0
    (versions,) = kfp_api.versions.values()
    assert "pipelineInfo" in versions[-1]["pipeline_spec"]


def test_vertex_fake_refuses_bodies_vertex_refuses(vertex_api) -> None:
    schedules = f"{vertex_api.url}/v1/{vertex_api.parent}/schedules"
    status, body = _post(
        schedules,
        {
            "displayName": "nightly",
            "cron": "0 3 * * *",
            "createPipelineJobRequest": {
                "parent": vertex_api.parent,
                "pipelineJob": {"runtimeConfig": {"gcsOutputDirectory": "gs://b/r"}, "pipeline_root": "x"},
            },
        },
    )
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    message = body["error"]["message"]
    assert "'maxConcurrentRunCount' is a required property" in message
    assert "'pipeline_root' was unexpected" in message
    assert body["error"]["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert not vertex_api.schedules and len(vertex_api.rejections) == 1
    jobs = f"{vertex_api.url}/v1/{vertex_api.parent}/pipelineJobs?pipelineJobId=j1"
    status, body = _post(
        jobs, {"displayName": "j", "runtimeConfig": {"parameterValues": {"a": 1}, "parameters": 5}}
    )
    assert status == 400 and "runtimeConfig.parameters" in body["error"]["message"] and not vertex_api.jobs


def test_schema_rules_follow_the_servers_json_parsing() -> None:
    """int64 as string or number, enums by name or number, null as unset; wrong types refused."""
    good = {
        "display_name": "x",
        "max_concurrency": "2",
        "trigger": {"periodic_schedule": {"interval_second": 60}},
        "mode": 1,
        "description": None,
    }
    assert kfp_errors("V2beta1RecurringRun", good) == []
    assert kfp_errors("V2beta1RecurringRun", {**good, "max_concurrency": 2, "mode": "ENABLE"}) == []
    assert kfp_errors("V2beta1RecurringRun", {**good, "max_concurrency": 2.5, "mode": "ON"}) == [
        "max_concurrency: 2.5 is not of type 'string', 'integer'",
        "mode: 'ON' is not valid under any of the given schemas",
    ]
    assert kfp_errors("V2beta1RecurringRun", {**good, "max_concurrency": "two"}) == [
        "max_concurrency: 'two' does not match '^-?[0-9]+$'"
    ]
    # Required: from a "Required …" docstring (max_concurrency) and from KFP_REQUIRED_MESSAGES (trigger).
    partial = {k: v for k, v in good.items() if k not in ("max_concurrency", "trigger")}
    assert kfp_errors("V2beta1RecurringRun", partial) == [
        "<body>: 'max_concurrency' is a required property",
        "<body>: 'trigger' is a required property",
    ]
    run = {"display_name": "r", "runtime_config": {"parameters": {"n": 1, "s": "a", "l": [1]}}}
    assert kfp_errors("V2beta1Run", run) == []
    assert kfp_errors("V2beta1Run", {"display_name": "r"}) == [
        "<body>: 'runtime_config' is a required property"
    ]
    assert kfp_errors("V2beta1Run", {**run, "pipeline_spec": []}) == [  # a Struct is a JSON object
        "pipeline_spec: [] is not of type 'object'"
    ]
    assert kfp_errors("V2beta1Run", {**run, "runtime_config": {"parameter": {}}}) == [
        "runtime_config: Additional properties are not allowed ('parameter' was unexpected)"
    ]
    assert kfp_errors("V2beta1Experiment", {"display_name": True}) == [
        "display_name: True is not of type 'string'"
    ]
    schedule = {"displayName": "s", "cron": "0 3 * * *", "maxConcurrentRunCount": "1"}
    assert vertex_errors("GoogleCloudAiplatformV1Schedule", schedule) == []
    assert vertex_errors("GoogleCloudAiplatformV1Schedule", {**schedule, "maxRunCount": "many"})


def test_a_fake_without_its_schema_skips(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Both fakes load their schema when built (conftest); without it the test is skipped, not passed.

    KFP: ``kfp_server_api`` not importable; Vertex: the stored discovery excerpt missing.
    """
    import api_schemas

    monkeypatch.setitem(sys.modules, "kfp_server_api.models", None)  # import raises ImportError
    monkeypatch.setattr(api_schemas, "VERTEX_SCHEMA", tmp_path / "absent.discovery.json")
    for definitions, fixture in (
        (api_schemas.kfp_definitions, "kfp_api"),
        (api_schemas.vertex_definitions, "vertex_api"),
    ):
        definitions.cache_clear()
        try:
            with pytest.raises(pytest.skip.Exception, match="cannot check request bodies"):
                definitions()
            with pytest.raises(pytest.skip.Exception, match="cannot check request bodies"):
                request.getfixturevalue(fixture)
        finally:
            definitions.cache_clear()
