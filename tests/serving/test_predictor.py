"""The real model server (``python -m kfp_cicd.serving``) in a subprocess, over V1, V2 REST and gRPC.

Predictions must match ``mlflow.pyfunc.load_model(dir).predict`` exactly, the V2 metadata must list
the model's real inputs, and every malformed request must get a 4xx naming the problem while the
server keeps serving. Where ``../shared/specs`` holds the Open Inference Protocol's OpenAPI file,
response bodies are validated against it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
import yaml

MODEL_NAME = "tiny-fraud"
STARTUP_TIMEOUT = 120.0
SPECS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "specs"
OIP_SPEC = SPECS_DIR / "open_inference_protocol_rest_v2.yaml"


@pytest.fixture(scope="module")
def model_dir(untrained_model_dir: Path) -> Path:
    return untrained_model_dir


@pytest.fixture(scope="module")
def rows(model_dir: Path) -> list[dict[str, Any]]:
    """Five feature rows the model has not seen, as JSON-ready dicts."""
    from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions

    frame = generate_transactions(5, seed=99).drop(columns=[LABEL_COLUMN])
    return frame.to_dict(orient="records")


@pytest.fixture(scope="module")
def expected(model_dir: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """What the pyfunc model itself answers for the rows."""
    return mlflow.pyfunc.load_model(str(model_dir)).predict(pd.DataFrame(rows))


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (all probes held open together so they differ)."""
    with ExitStack() as stack:
        probes = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)
        ]
        for probe in probes:
            probe.bind(("", 0))
        return [probe.getsockname()[1] for probe in probes]


def _log_tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The model server as a subprocess on free loopback ports; always stopped at the end."""
    http_port, grpc_port = _free_ports(2)
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "kfp_cicd.serving",
        "--model-dir",
        str(model_dir),
        "--model-name",
        MODEL_NAME,
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
    ]
    base_url = f"http://127.0.0.1:{http_port}"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{_log_tail(log_path)}")
            try:
                if requests.get(f"{base_url}/v2/models/{MODEL_NAME}/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after {STARTUP_TIMEOUT} s:\n{_log_tail(log_path)}")
            time.sleep(0.25)
        yield {"base_url": base_url, "grpc": f"127.0.0.1:{grpc_port}", "process": process}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def v1_url(server: dict[str, Any]) -> str:
    return f"{server['base_url']}/v1/models/{MODEL_NAME}:predict"


def v2_url(server: dict[str, Any]) -> str:
    return f"{server['base_url']}/v2/models/{MODEL_NAME}/infer"


def v2_inputs(rows: list[dict[str, Any]], metadata: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": spec["name"],
            "datatype": spec["datatype"],
            "shape": [len(rows)],
            "data": [row[spec["name"]] for row in rows],
        }
        for spec in metadata["inputs"]
    ]


@pytest.fixture(scope="module")
def metadata(server: dict[str, Any]) -> dict[str, Any]:
    response = requests.get(f"{server['base_url']}/v2/models/{MODEL_NAME}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def assert_still_serving(server: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    assert server["process"].poll() is None, "the server died"
    response = requests.post(v1_url(server), json={"instances": rows[:1]}, timeout=10)
    assert response.status_code == 200, response.text


# --- the happy paths -------------------------------------------------------------------------


def test_metadata_lists_the_signature_inputs_and_outputs(metadata: dict[str, Any], model_dir: Path) -> None:
    schema = mlflow.models.Model.load(str(model_dir / "MLmodel")).get_input_schema()
    datatypes = {"long": "INT64", "double": "FP64", "string": "BYTES"}
    assert metadata["name"] == MODEL_NAME
    assert metadata["inputs"] == [
        {"name": c.name, "datatype": datatypes[c.type.name], "shape": [-1]} for c in schema.inputs
    ]
    assert {"name": "amount", "datatype": "FP64", "shape": [-1]} in metadata["inputs"]
    assert metadata["outputs"] == [
        {"name": "probability", "datatype": "FP64", "shape": [-1]},
        {"name": "prediction", "datatype": "INT64", "shape": [-1]},
    ]


def test_v1_matches_the_pyfunc_model(
    server: dict[str, Any], rows: list[dict[str, Any]], expected: pd.DataFrame
) -> None:
    response = requests.post(v1_url(server), json={"instances": rows}, timeout=10)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["prediction"] for p in predictions] == expected["prediction"].tolist()
    np.testing.assert_allclose(
        [p["probability"] for p in predictions], expected["probability"], rtol=0, atol=1e-12
    )


def test_v1_accepts_rows_under_inputs(
    server: dict[str, Any], rows: list[dict[str, Any]], expected: pd.DataFrame
) -> None:
    response = requests.post(v1_url(server), json={"inputs": rows[:2]}, timeout=10)
    assert response.status_code == 200, response.text
    assert [p["prediction"] for p in response.json()["predictions"]] == expected["prediction"][:2].tolist()


def test_v2_rest_matches_the_pyfunc_model(
    server: dict[str, Any], rows: list[dict[str, Any]], metadata: dict[str, Any], expected: pd.DataFrame
) -> None:
    response = requests.post(
        v2_url(server), json={"id": "t-1", "inputs": v2_inputs(rows, metadata)}, timeout=10
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "t-1" and body["model_name"] == MODEL_NAME
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["probability"]["datatype"] == "FP64" and outputs["probability"]["shape"] == [len(rows)]
    assert outputs["prediction"]["datatype"] == "INT64" and outputs["prediction"]["shape"] == [len(rows)]
    np.testing.assert_allclose(outputs["probability"]["data"], expected["probability"], rtol=0, atol=1e-12)
    assert outputs["prediction"]["data"] == expected["prediction"].tolist()


def test_v2_grpc_matches_the_pyfunc_model(
    server: dict[str, Any], rows: list[dict[str, Any]], metadata: dict[str, Any], expected: pd.DataFrame
) -> None:
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    def tensor(spec: dict[str, Any]) -> pb.ModelInferRequest.InferInputTensor:
        values = [row[spec["name"]] for row in rows]
        contents = {
            "INT64": lambda: pb.InferTensorContents(int64_contents=values),
            "FP64": lambda: pb.InferTensorContents(fp64_contents=values),
            "BYTES": lambda: pb.InferTensorContents(bytes_contents=[v.encode() for v in values]),
        }
        return pb.ModelInferRequest.InferInputTensor(
            name=spec["name"],
            datatype=spec["datatype"],
            shape=[len(rows)],
            contents=contents[spec["datatype"]](),
        )

    request = pb.ModelInferRequest(
        model_name=MODEL_NAME, id="g-1", inputs=[tensor(spec) for spec in metadata["inputs"]]
    )
    with grpc.insecure_channel(server["grpc"]) as channel:
        reply = GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    outputs = {output.name: output for output in reply.outputs}
    np.testing.assert_allclose(
        list(outputs["probability"].contents.fp64_contents), expected["probability"], rtol=0, atol=1e-12
    )
    assert list(outputs["prediction"].contents.int64_contents) == expected["prediction"].tolist()


# --- client mistakes: 4xx naming the problem, and the server keeps serving -----------------------


def _without(row: dict[str, Any], column: str) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != column}


V1_MISTAKES = {
    "missing column": (lambda rows: {"instances": [_without(rows[0], "hour")]}, "hour"),
    "unknown column": (lambda rows: {"instances": [{**rows[0], "shoe_size": 42}]}, "shoe_size"),
    "string in numeric column": (lambda rows: {"instances": [{**rows[0], "amount": "lots"}]}, "amount"),
    "fraction in integer column": (lambda rows: {"instances": [{**rows[0], "hour": 3.5}]}, "hour"),
    "number in string column": (lambda rows: {"instances": [{**rows[0], "country": 7}]}, "country"),
    "null value": (lambda rows: {"instances": [{**rows[0], "channel": None}]}, "channel"),
    "empty instances": (lambda rows: {"instances": []}, "empty"),
    "rows are not objects": (lambda rows: {"instances": [[1, 2, 3]]}, "row 0"),
    "no instances key": (lambda rows: {"rows": rows}, "instances"),
}


@pytest.mark.parametrize("mistake", sorted(V1_MISTAKES))
def test_v1_mistakes_get_a_400_naming_the_problem(
    server: dict[str, Any], rows: list[dict[str, Any]], mistake: str
) -> None:
    make_body, named = V1_MISTAKES[mistake]
    response = requests.post(v1_url(server), json=make_body(rows), timeout=10)
    assert response.status_code == 400, response.text
    assert named in response.json()["error"]
    assert_still_serving(server, rows)


def test_malformed_json_gets_a_4xx(server: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    headers = {"content-type": "application/json"}
    v1 = requests.post(v1_url(server), data=b'{"instances": [', headers=headers, timeout=10)
    assert v1.status_code == 400 and "Unrecognized request format" in v1.json()["error"]
    v2 = requests.post(v2_url(server), data=b'{"inputs": [', headers=headers, timeout=10)
    assert v2.status_code == 422, v2.text  # FastAPI rejects the body before kserve sees it
    assert_still_serving(server, rows)


def _replace(inputs: list[dict[str, Any]], name: str, **changes: Any) -> list[dict[str, Any]]:
    return [{**tensor, **changes} if tensor["name"] == name else tensor for tensor in inputs]


V2_MISTAKES = {
    "missing column": (lambda inputs: [t for t in inputs if t["name"] != "hour"], "hour"),
    "unknown column": (
        lambda inputs: [*inputs, {"name": "shoe_size", "datatype": "INT64", "shape": [5], "data": [1] * 5}],
        "shoe_size",
    ),
    "wrong datatype": (lambda inputs: _replace(inputs, "amount", datatype="BYTES", data=["x"] * 5), "amount"),
    "float tensor for integer column": (lambda inputs: _replace(inputs, "hour", datatype="FP64"), "hour"),
    "string in INT64 tensor": (lambda inputs: _replace(inputs, "hour", data=["x"] * 5), "hour"),
    "ragged shapes": (lambda inputs: _replace(inputs, "country", shape=[2], data=["US", "GB"]), "country"),
    "shape disagrees with data": (lambda inputs: _replace(inputs, "amount", shape=[4]), "amount"),
    "two-dimensional tensor": (lambda inputs: _replace(inputs, "amount", shape=[5, 2]), "amount"),
    "no rows": (lambda inputs: [{**t, "shape": [0], "data": []} for t in inputs], "no rows"),
}


@pytest.mark.parametrize("mistake", sorted(V2_MISTAKES))
def test_v2_mistakes_get_a_400_naming_the_problem(
    server: dict[str, Any], rows: list[dict[str, Any]], metadata: dict[str, Any], mistake: str
) -> None:
    make_inputs, named = V2_MISTAKES[mistake]
    response = requests.post(
        v2_url(server), json={"inputs": make_inputs(v2_inputs(rows, metadata))}, timeout=10
    )
    assert response.status_code == 400, response.text
    assert named in response.json()["error"]
    assert_still_serving(server, rows)


def test_unknown_model_is_a_404(server: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    response = requests.post(
        f"{server['base_url']}/v1/models/nope:predict", json={"instances": rows}, timeout=10
    )
    assert response.status_code == 404


# --- the command line ----------------------------------------------------------------------------


def test_cli_refuses_a_missing_model_name_and_a_bad_model_dir(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "kfp_cicd.serving"]
    env_free = {key: value for key, value in os.environ.items() if key not in ("MODEL_NAME", "MODEL_DIR")}
    no_name = subprocess.run(
        [*base, "--model-dir", str(tmp_path)], capture_output=True, text=True, timeout=60, env=env_free
    )
    assert no_name.returncode == 2 and "--model-name is required" in no_name.stderr
    no_model = subprocess.run(
        [*base, "--model-dir", str(tmp_path), "--model-name", "m"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_free,
    )
    assert no_model.returncode == 2 and "not an MLflow model directory" in no_model.stderr


# --- the Open Inference Protocol's own schemas ------------------------------------------------------


@pytest.fixture(scope="module")
def oip_components() -> dict[str, Any]:
    if not OIP_SPEC.is_file():
        pytest.skip(f"{OIP_SPEC} not present (a fresh clone has no ../shared/specs)")
    return yaml.safe_load(OIP_SPEC.read_text())["components"]


def _strip_nulls(value: Any) -> Any:
    """kserve 0.21 sends null for optional fields, which the OpenAPI schemas do not allow."""
    if isinstance(value, dict):
        return {key: _strip_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_strip_nulls(item) for item in value]
    return value


def _validate(components: dict[str, Any], schema_name: str, body: Any) -> None:
    from jsonschema import Draft7Validator

    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": components}
    errors = sorted(Draft7Validator(schema).iter_errors(_strip_nulls(body)), key=str)
    assert not errors, [error.message for error in errors]


def test_bodies_follow_the_open_inference_protocol(
    server: dict[str, Any],
    rows: list[dict[str, Any]],
    metadata: dict[str, Any],
    oip_components: dict[str, Any],
) -> None:
    request = {"id": "spec-1", "inputs": v2_inputs(rows, metadata)}
    _validate(oip_components, "inference_request", request)
    response = requests.post(v2_url(server), json=request, timeout=10)
    _validate(oip_components, "inference_response", response.json())
    _validate(oip_components, "metadata_model_response", metadata)
    error = requests.post(v2_url(server), json={"inputs": request["inputs"][1:]}, timeout=10)
    _validate(oip_components, "inference_error_response", error.json())
    # The validator is live: a response without outputs is refused.
    with pytest.raises(AssertionError):
        _validate(oip_components, "inference_response", {"model_name": MODEL_NAME})


# --- the deploy step's smoke test against this real server -------------------------------------------


def test_smoke_test_passes_against_the_real_server(
    server: dict[str, Any], rows: list[dict[str, Any]], expected: pd.DataFrame
) -> None:
    from kfp_cicd.components.deploy.smoke import smoke_test

    result = smoke_test(server["base_url"], MODEL_NAME, rows, timeout=10)
    assert [p.prediction for p in result.v2_predictions] == expected["prediction"].tolist()
    assert result.v1_predictions == result.v2_predictions
    assert result.latency_ms == max(result.v1_latency_ms, result.v2_latency_ms) > 0


def test_smoke_test_failure_carries_the_server_body(
    server: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    from kfp_cicd.components.deploy.smoke import smoke_test
    from kfp_cicd.errors import DeploymentError

    with pytest.raises(DeploymentError, match=r"V1 predict: .* answered HTTP 400: .*'amount'"):
        smoke_test(server["base_url"], MODEL_NAME, [{**rows[0], "amount": "lots"}], timeout=10)
    with pytest.raises(DeploymentError, match="did not become ready"):
        smoke_test(server["base_url"], "no-such-model", rows, timeout=0.5)


def _metric(server: dict[str, Any], name: str, **labels: str) -> float:
    """One sample of the predictor's /metrics (0 when the series does not exist yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{server['base_url']}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_count_rows_errors_scores_and_out_of_domain_inputs(
    server: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    model = {"model_name": MODEL_NAME}
    before = {
        name: _metric(server, name, **model)
        for name in (
            "kfp_cicd_predictions_total",
            "kfp_cicd_prediction_score_count",
            "kfp_cicd_out_of_domain_inputs_total",
        )
    }
    errors_before = _metric(server, "kfp_cicd_prediction_errors_total", kind="invalid_input", **model)
    latency_before = _metric(server, "kfp_cicd_request_latency_seconds_count", protocol="v1", **model)
    strange = [dict(rows[0], country="Atlantis"), dict(rows[1], amount=1e12), rows[2]]
    assert requests.post(v1_url(server), json={"instances": strange}, timeout=10).status_code == 200
    refused = requests.post(v1_url(server), json={"instances": [{"amount": 1}]}, timeout=10)
    assert refused.status_code == 400
    assert _metric(server, "kfp_cicd_predictions_total", protocol="v1", **model) >= 3
    assert _metric(server, "kfp_cicd_predictions_total", **model) - before["kfp_cicd_predictions_total"] == 3
    assert (
        _metric(server, "kfp_cicd_prediction_score_count", **model)
        - before["kfp_cicd_prediction_score_count"]
        == 3
    )
    assert (
        _metric(server, "kfp_cicd_out_of_domain_inputs_total", **model)
        - before["kfp_cicd_out_of_domain_inputs_total"]
        == 2
    ), "an unseen country and a huge amount"
    assert (
        _metric(server, "kfp_cicd_prediction_errors_total", kind="invalid_input", **model)
        == errors_before + 1
    )
    assert (
        _metric(server, "kfp_cicd_request_latency_seconds_count", protocol="v1", **model)
        == latency_before + 2
    )


def test_monitoring_manifests_use_only_metrics_the_predictor_exports(
    server: dict[str, Any], rows: list[dict[str, Any]], repo_root: Path
) -> None:
    """Every kfp_cicd_* series the alerts and the dashboard query exists on the real /metrics."""
    import re

    from prometheus_client.parser import text_string_to_metric_families

    assert requests.post(v1_url(server), json={"instances": rows[:2]}, timeout=10).status_code == 200
    requests.post(v1_url(server), json={"instances": [{"amount": 1}]}, timeout=10)  # an error series
    text = requests.get(f"{server['base_url']}/metrics", timeout=10).text
    exported = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    monitoring = repo_root / "manifests" / "monitoring"
    queried = set()
    for path in [monitoring / "prometheus_rules.yaml", *monitoring.glob("*.json")]:
        queried |= set(re.findall(r"kfp_cicd_[a-z0-9_]+", path.read_text()))
    assert queried, "the manifests must query the predictor's metrics"
    missing = sorted(name for name in queried if name not in exported)
    assert not missing, f"queried but not exported by the predictor: {missing}"


# --- column checks of the scoring path (no server: the functions the server calls) -----------------


@pytest.fixture(scope="module")
def signature_columns(model_dir: Path) -> list[Any]:
    from kfp_cicd.serving.predictor import columns_from_signature

    return columns_from_signature(mlflow.pyfunc.load_model(str(model_dir)))


def test_v1_columns_are_typed_arrays_and_the_first_bad_value_is_named(
    signature_columns: list[Any], rows: list[dict[str, Any]]
) -> None:
    from kserve.errors import InvalidInput

    from kfp_cicd.serving.predictor import columns_from_instances

    values = columns_from_instances({"instances": [{**rows[0], "hour": 3.0}, rows[1]]}, signature_columns)
    assert values["hour"].dtype == np.int64 and values["hour"].tolist() == [3, rows[1]["hour"]]
    assert values["amount"].dtype == np.float64
    assert values["country"] == [rows[0]["country"], rows[1]["country"]]
    for column, bad in (
        ("amount", True),
        ("hour", False),
        ("amount", float("nan")),
        ("hour", 2**63),
        ("country", 7),
    ):
        with pytest.raises(InvalidInput, match=rf"column '{column}'.* in row 1"):
            columns_from_instances({"instances": [rows[0], {**rows[1], column: bad}]}, signature_columns)


def test_v2_numpy_tensors_are_checked_as_arrays(
    signature_columns: list[Any], rows: list[dict[str, Any]]
) -> None:
    from kserve import InferInput, InferRequest
    from kserve.errors import InvalidInput

    from kfp_cicd.serving.predictor import columns_from_tensors

    def request(overrides: dict[str, np.ndarray]) -> InferRequest:
        inputs = []
        for column in signature_columns:
            data = overrides.get(
                column.name,
                np.array(
                    [row[column.name] for row in rows[:2]], dtype=object if column.kind == "text" else None
                ),
            )
            datatype = {
                "i": "INT64",
                "u": "UINT64",
                "f": "FP32" if data.dtype == np.float32 else "FP64",
                "b": "BOOL",
            }.get(data.dtype.kind, "BYTES")
            inputs.append(InferInput(column.name, [2], datatype, data=data))
        return InferRequest("m", inputs)

    fp32 = request({"amount": np.array([1.5, 2.0], dtype=np.float32)})
    values = columns_from_tensors(fp32, signature_columns)
    assert values["amount"].dtype == np.float64 and values["amount"].tolist() == [1.5, 2.0]
    with pytest.raises(InvalidInput, match=r"'hour'.*at index 1 does not fit in a 64-bit integer"):
        columns_from_tensors(request({"hour": np.array([1, 2**63], dtype=np.uint64)}), signature_columns)
    with pytest.raises(InvalidInput, match=r"'amount' expects a finite number, got inf at index 0"):
        columns_from_tensors(request({"amount": np.array([np.inf, 1.0])}), signature_columns)
