"""deploy_target=vertex-endpoint: the REAL aiplatform_v1 clients (REST) against a recording Vertex FAKE.

``FakeVertexAi`` (tests/support/fake_vertex_endpoints.py) plays the Vertex Model Registry, Endpoints
and online prediction; request bodies are parsed strictly into the API's own messages. Its "serving
nodes" are REAL predictor processes (``python -m kfp_cicd.serving``) reached at the container's
health and predict routes, so the routes the upload declares are the ones the predictor serves.
``FakeGoogleCloud`` issues the task's OAuth tokens (service-account key file, as on Vertex). The
MLflow registry is real (SQLite): the champion alias moves only after promotion.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from fake_google_cloud import FakeGoogleCloud
from fake_vertex_endpoints import FakeVertexAi
from google.cloud.aiplatform_v1 import AcceleratorType

from kfp_cicd.components.deploy.cluster_target import (
    CREATED,
    PROMOTED,
    ROLLED_BACK,
    RolloutFailed,
    RolloutSettings,
)
from kfp_cicd.components.deploy.deployment import ClusterOptions, run_deploy_task
from kfp_cicd.components.deploy.service_check import CheckPolicy
from kfp_cicd.components.deploy.vertex_target import (
    VERTEX_API_ENV,
    VertexClients,
    VertexEndpointOptions,
    VertexEndpointRollout,
)
from kfp_cicd.errors import DataError, DeploymentError
from kfp_cicd.registry.aliases import CHAMPION
from kfp_cicd.registry.client import version_for_alias
from kfp_cicd.registry.digest import registered_digest
from kfp_cicd.registry.registration import register_model_version

MODEL = "fraud-detector"
LOCATION = "projects/my-project/locations/europe-west4"
ENDPOINT = f"{LOCATION}/endpoints/fraud-detector"
IMAGE = "europe-docker.pkg.dev/my-project/kfp-cicd/kfp-cicd-predictor:1.0.0"


@pytest.fixture(scope="module")
def clouds() -> Iterator[tuple[FakeGoogleCloud, FakeVertexAi]]:
    with FakeGoogleCloud() as google, FakeVertexAi(google) as vertex:
        yield google, vertex


@pytest.fixture
def vertex(
    clouds: tuple[FakeGoogleCloud, FakeVertexAi], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> FakeVertexAi:
    google, fake = clouds
    fake.reset()
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(google.service_account_file(tmp_path)))
    monkeypatch.setenv(VERTEX_API_ENV, fake.url)
    return fake


class _BrokenModelServer:
    """A model server that reports ready and answers predictions that are not probabilities."""

    def __enter__(self) -> str:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply(200, {"name": MODEL, "ready": True})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                rows = json.loads(self.rfile.read(length))["instances"]
                self._reply(200, {"predictions": [{"probability": 7.5, "prediction": 3} for _ in rows]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _register(tracking_uri: str, model_dir: Path) -> str:
    return register_model_version(model_dir, tracking_uri=tracking_uri, model_name=MODEL).version


def _artifacts(version: str) -> str:
    return f"gs://models-bucket/mlflow/{MODEL}/{version}"


def _rollout(
    tracking_uri: str,
    version: str,
    eval_rows: list[dict[str, Any]],
    *,
    accelerator: str = "",
    percent: int = 10,
) -> VertexEndpointRollout:
    options = VertexEndpointOptions(
        endpoint=ENDPOINT,
        machine_type="g2-standard-8" if accelerator else "n1-standard-2",
        accelerator_type=accelerator,
        accelerator_count=1,
    )
    return VertexEndpointRollout(
        VertexClients(options.region),
        options,
        served_name=MODEL,
        model_name=MODEL,
        version=version,
        tracking_uri=tracking_uri,
        artifact_uri=_artifacts(version),
        digest=registered_digest(tracking_uri, MODEL, version),
        image=IMAGE,
        smoke_rows=eval_rows,
        min_replicas=1,
        max_replicas=2,
        settings=RolloutSettings(
            canary_percent=percent,
            ready_timeout=30.0,
            poll_seconds=0.05,
            checks=CheckPolicy(requests=20, request_timeout=10.0),
        ),
    )


@pytest.fixture(scope="module")
def rows(eval_data: str) -> list[dict[str, Any]]:
    from kfp_cicd.data.synthetic import LABEL_COLUMN
    from kfp_cicd.data.tables import read_table

    return read_table(eval_data).drop(columns=[LABEL_COLUMN]).head(3).to_dict(orient="records")


def test_first_deploy_creates_the_endpoint_uploads_with_the_predictor_routes_and_moves_champion(
    vertex: FakeVertexAi, tracking_uri: str, untrained_model_dir: Path, predictor_url: str, rows: list
) -> None:
    version = _register(tracking_uri, untrained_model_dir)
    vertex.backends[_artifacts(version)] = predictor_url

    report = _rollout(tracking_uri, version, rows, accelerator="NVIDIA_L4").run()

    assert report.outcome == CREATED and report.champion == version
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == version
    created = vertex.calls("create_endpoint")[0]
    assert created["query"]["endpointId"] == "fraud-detector" and created["body"]["displayName"] == MODEL
    upload = vertex.calls("upload")[0]["body"]
    assert upload["modelId"] == MODEL and "parentModel" not in upload
    container = upload["model"]["containerSpec"]
    assert container["imageUri"] == IMAGE
    assert container["predictRoute"] == f"/v1/models/{MODEL}:predict"
    assert container["healthRoute"] == f"/v2/models/{MODEL}/ready"
    assert container["ports"] == [{"containerPort": 8080}]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert (
        env["MODEL_DIGEST"] == registered_digest(tracking_uri, MODEL, version) and env["MODEL_NAME"] == MODEL
    )
    assert upload["model"]["artifactUri"] == _artifacts(version)
    assert upload["model"]["versionAliases"] == [f"mlflow-v{version}"]
    deploy = vertex.calls("deploy")[0]["body"]
    resources = deploy["deployedModel"]["dedicatedResources"]
    assert resources["machineSpec"] == {
        "machineType": "g2-standard-8",
        "acceleratorType": AcceleratorType.NVIDIA_L4.value,  # the client sends enums as numbers
        "acceleratorCount": 1,
    }
    assert (resources["minReplicaCount"], resources["maxReplicaCount"]) == (1, 2)
    assert deploy["trafficSplit"] == {"0": 100}
    # The checks went through the endpoint to the real predictor's predict route.
    assert vertex.predicted and {p["route"] for p in vertex.predicted} == {f"/v1/models/{MODEL}:predict"}
    assert {p["status"] for p in vertex.predicted} == {200}


def test_canary_then_promote_as_a_new_version_of_the_same_vertex_model(
    vertex: FakeVertexAi, tracking_uri: str, untrained_model_dir: Path, predictor_url: str, rows: list
) -> None:
    old = _register(tracking_uri, untrained_model_dir)
    new = _register(tracking_uri, untrained_model_dir)
    vertex.backends[_artifacts(old)] = predictor_url
    vertex.backends[_artifacts(new)] = predictor_url
    _rollout(tracking_uri, old, rows).run()
    old_id = vertex.deployed(ENDPOINT)[0]["id"]

    report = _rollout(tracking_uri, new, rows).run()

    assert report.outcome == PROMOTED and report.canary_percent == 10
    second_upload = vertex.calls("upload")[1]["body"]
    assert second_upload["parentModel"] == f"{LOCATION}/models/{MODEL}" and "modelId" not in second_upload
    assert [v["versionId"] for v in vertex.models[f"{LOCATION}/models/{MODEL}"]] == ["1", "2"]
    canary = vertex.calls("deploy")[1]["body"]
    assert canary["trafficSplit"] == {"0": 10, old_id: 90}
    new_id = next(m["id"] for m in vertex.deployed(ENDPOINT) if m["modelVersionId"] == "2")
    assert any(p["deployedModelId"] == new_id for p in vertex.predicted)  # the canary itself answered
    promote = vertex.calls("update_endpoint")[-1]
    assert promote["query"]["updateMask"] in ("trafficSplit", "traffic_split")
    assert promote["body"]["trafficSplit"] == {new_id: 100}
    assert vertex.calls("undeploy")[-1]["body"]["deployedModelId"] == old_id
    assert vertex.traffic(ENDPOINT) == {new_id: 100} and len(vertex.deployed(ENDPOINT)) == 1
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == new
    # Promotion happened before the champion moved: the alias step is the last one.
    assert report.steps[-1].startswith("MLflow alias champion")


def test_a_failed_smoke_check_rolls_back_and_undeploys_the_canary(
    vertex: FakeVertexAi, tracking_uri: str, untrained_model_dir: Path, predictor_url: str, rows: list
) -> None:
    old = _register(tracking_uri, untrained_model_dir)
    bad = _register(tracking_uri, untrained_model_dir)
    vertex.backends[_artifacts(old)] = predictor_url
    _rollout(tracking_uri, old, rows).run()
    old_id = vertex.deployed(ENDPOINT)[0]["id"]

    with _BrokenModelServer() as broken:
        vertex.backends[_artifacts(bad)] = broken
        with pytest.raises(RolloutFailed, match="ROLLED BACK") as failure:
            _rollout(tracking_uri, bad, rows, percent=25).run()

    report = failure.value.report
    assert report.outcome == ROLLED_BACK and "the new model answered badly" in report.reason
    assert "probability 7.5" in report.reason
    assert vertex.traffic(ENDPOINT) == {old_id: 100}
    assert [m["id"] for m in vertex.deployed(ENDPOINT)] == [old_id]
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == old
    assert "champion alias unchanged" in str(failure.value)


def test_a_canary_that_never_becomes_ready_leaves_the_old_model_serving(
    vertex: FakeVertexAi, tracking_uri: str, untrained_model_dir: Path, predictor_url: str, rows: list
) -> None:
    old = _register(tracking_uri, untrained_model_dir)
    stuck = _register(tracking_uri, untrained_model_dir)  # no serving node answers its health route
    vertex.backends[_artifacts(old)] = predictor_url
    _rollout(tracking_uri, old, rows).run()
    old_id = vertex.deployed(ENDPOINT)[0]["id"]

    with pytest.raises(RolloutFailed, match="Model server never became ready"):
        _rollout(tracking_uri, stuck, rows).run()

    assert vertex.traffic(ENDPOINT) == {old_id: 100}
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == old


def test_rerunning_the_promoted_version_changes_nothing_but_rechecks(
    vertex: FakeVertexAi, tracking_uri: str, untrained_model_dir: Path, predictor_url: str, rows: list
) -> None:
    version = _register(tracking_uri, untrained_model_dir)
    vertex.backends[_artifacts(version)] = predictor_url
    _rollout(tracking_uri, version, rows).run()

    report = _rollout(tracking_uri, version, rows).run()

    assert report.outcome == "updated-in-place"
    assert len(vertex.calls("upload")) == 1 and len(vertex.calls("deploy")) == 1


def test_a_registry_outside_cloud_storage_is_refused_before_any_vertex_call(
    vertex: FakeVertexAi, tracking_uri: str, untrained_model_dir: Path, eval_data: str, tmp_path: Path
) -> None:
    version = _register(tracking_uri, untrained_model_dir)
    with pytest.raises(DeploymentError, match="Vertex AI serves model files from Cloud Storage"):
        run_deploy_task(
            tracking_uri=tracking_uri,
            model_name=MODEL,
            version=version,
            target="vertex-endpoint",
            namespace="kfp-cicd",
            runtime_image=IMAGE,
            eval_data=eval_data,
            inference_service_path=str(tmp_path / "isvc.yaml"),
            deployment_mode="Serverless",
            vertex=VertexEndpointOptions(endpoint=ENDPOINT),
        )
    assert vertex.requests == []


@pytest.mark.parametrize(
    ("options", "cluster", "message"),
    [
        (VertexEndpointOptions(), ClusterOptions(), "needs vertex_endpoint"),
        (
            VertexEndpointOptions(endpoint="my-endpoint"),
            ClusterOptions(),
            "projects/PROJECT/locations/REGION",
        ),
        (VertexEndpointOptions(endpoint=ENDPOINT), ClusterOptions(min_replicas=0), "1 <= min_replicas"),
        (
            VertexEndpointOptions(endpoint=ENDPOINT, accelerator_type="nvidia-l4"),
            ClusterOptions(),
            "AcceleratorType name",
        ),
    ],
)
def test_bad_vertex_settings_are_refused_before_anything_runs(
    vertex: FakeVertexAi,
    options: VertexEndpointOptions,
    cluster: ClusterOptions,
    message: str,
    tmp_path: Path,
) -> None:
    with pytest.raises((DeploymentError, DataError), match=message):
        run_deploy_task(
            tracking_uri="sqlite:///unused.db",
            model_name=MODEL,
            version="1",
            target="vertex-endpoint",
            namespace="kfp-cicd",
            runtime_image=IMAGE,
            eval_data="unused.csv",
            inference_service_path=str(tmp_path / "isvc.yaml"),
            deployment_mode="Serverless",
            cluster=cluster,
            vertex=options,
        )
    assert vertex.requests == []


def test_the_vertex_fake_rejects_a_body_the_real_api_would(vertex: FakeVertexAi) -> None:
    """The rejection path is live: an unknown field and a wrong enum are 400 INVALID_ARGUMENT."""
    from google.auth import default
    from google.auth.transport.requests import Request

    credentials, _ = default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(Request())
    headers = {"Authorization": f"Bearer {credentials.token}"}
    unknown = requests.post(
        f"{vertex.url}/v1/{LOCATION}/models:upload",
        json={"model": {"displayName": "x", "containerSpec": {"imageUri": IMAGE, "predictPath": "/p"}}},
        headers=headers,
        timeout=10,
    )
    vertex.endpoints[ENDPOINT] = {
        "name": ENDPOINT,
        "displayName": "x",
        "deployedModels": [],
        "trafficSplit": {},
    }
    wrong_enum = requests.post(
        f"{vertex.url}/v1/{ENDPOINT}:deployModel",
        json={
            "deployedModel": {"model": "m", "dedicatedResources": {"machineSpec": {"acceleratorType": "L4"}}}
        },
        headers=headers,
        timeout=10,
    )
    for answer, needle in ((unknown, "predictPath"), (wrong_enum, "L4")):
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT" and needle in error["message"]
