"""Request limits and KServe's open doors, against the real server (``limited_predictor``: 200,000
bytes and 100 rows per request).

Oversized bodies get a 413 naming the limit without the server reading them into memory, too many
rows a 400 naming the limit, undecodable V2 binary bodies a 400 (KServe answers 500), and the model
repository API cannot unload the served model. After each, the server still serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from kfp_cicd.components.deploy.smoke import v2_inputs
from kfp_cicd.errors import DeploymentError
from kfp_cicd.serving.__main__ import main as serving_main
from kfp_cicd.serving.limits import RequestLimits

MAX_BYTES = 200_000
MAX_ROWS = 100
MIB = 1024 * 1024


def test_a_body_over_the_byte_limit_gets_a_413_naming_the_limit(
    limited_predictor: Any, feature_rows: list[dict]
) -> None:
    body = json.dumps({"instances": feature_rows * 3}).encode()
    assert len(body) > MAX_BYTES
    response = requests.post(
        limited_predictor.v1_url, data=body, headers={"content-type": "application/json"}, timeout=60
    )
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert f"{len(body)} bytes" in error and f"at most {MAX_BYTES} bytes" in error
    assert "--max-request-bytes" in error
    assert limited_predictor.is_serving(feature_rows[0])


def test_a_huge_body_is_refused_without_being_read_into_memory(
    limited_predictor: Any, feature_rows: list[dict]
) -> None:
    """64 MiB announced and sent: refused from its Content-Length; the server's RSS barely moves."""
    before = limited_predictor.rss()
    response = requests.post(
        limited_predictor.v2_url,
        data=b" " * (64 * MIB),
        headers={"content-type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 413, response.text
    growth = limited_predictor.rss() - before
    assert growth < 16 * MIB, f"RSS grew {growth / MIB:.1f} MiB for a refused 64 MiB body"
    assert limited_predictor.is_serving(feature_rows[0])


def _chunks(data: bytes, size: int = 16_384) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_chunked_bodies_are_counted_as_they_arrive(limited_predictor: Any, feature_rows: list[dict]) -> None:
    """No Content-Length: an oversized chunked body is cut off at the limit, a small one scores."""
    headers = {"content-type": "application/json"}
    too_big = requests.post(
        limited_predictor.v1_url, data=_chunks(b"[" + b"1," * MAX_BYTES + b"1]"), headers=headers, timeout=60
    )
    assert too_big.status_code == 413, too_big.text
    assert f"at most {MAX_BYTES} bytes" in too_big.json()["error"]
    small = requests.post(
        limited_predictor.v1_url,
        data=_chunks(json.dumps({"instances": feature_rows[:3]}).encode(), 100),
        headers=headers,
        timeout=60,
    )
    assert small.status_code == 200, small.text
    assert len(small.json()["predictions"]) == 3


def test_too_many_rows_get_a_400_naming_the_limit_on_v1_and_v2(
    limited_predictor: Any, feature_rows: list[dict], model_metadata: dict
) -> None:
    rows = feature_rows[: MAX_ROWS + 1]
    v1 = requests.post(limited_predictor.v1_url, json={"instances": rows}, timeout=60)
    v2 = requests.post(limited_predictor.v2_url, json={"inputs": v2_inputs(rows, model_metadata)}, timeout=60)
    for response in (v1, v2):
        assert response.status_code == 400, response.text
        assert f"holds {MAX_ROWS + 1} rows" in response.json()["error"]
        assert f"at most {MAX_ROWS} rows" in response.json()["error"]
    at_limit = requests.post(
        limited_predictor.v1_url, json={"instances": feature_rows[:MAX_ROWS]}, timeout=60
    )
    assert at_limit.status_code == 200, at_limit.text


def test_a_v2_tensor_declaring_more_rows_than_the_limit_is_refused_before_decoding(
    limited_predictor: Any, feature_rows: list[dict], model_metadata: dict
) -> None:
    inputs = v2_inputs(feature_rows[:2], model_metadata)
    inputs[0] = {**inputs[0], "shape": [10**12]}
    response = requests.post(limited_predictor.v2_url, json={"inputs": inputs}, timeout=60)
    assert response.status_code == 400 and "at most 100 rows" in response.json()["error"]


def _binary_request(request: dict[str, Any], raw: bytes) -> tuple[bytes, dict[str, str]]:
    header = json.dumps(request).encode()
    return header + raw, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }


@pytest.mark.parametrize(
    "case", ["bytes shorter than the shape", "header length not a number", "no inputs key"]
)
def test_undecodable_v2_binary_bodies_get_a_400_not_a_500(
    limited_predictor: Any, feature_rows: list[dict], model_metadata: dict, case: str
) -> None:
    """KServe 0.21 answers these with HTTP 500 (a ValueError/KeyError while decoding)."""
    tensors = [
        {
            "name": spec["name"],
            "datatype": spec["datatype"],
            "shape": [2],
            "parameters": {"binary_data_size": 16},
        }
        for spec in model_metadata["inputs"]
    ]
    body, headers = _binary_request({"inputs": tensors}, b"\0" * 16)
    if case == "header length not a number":
        headers["inference-header-content-length"] = "twelve"
    elif case == "no inputs key":
        body, headers = _binary_request({"outputs": tensors}, b"\0" * 16)
    response = requests.post(limited_predictor.v2_url, data=body, headers=headers, timeout=60)
    assert response.status_code == 400, response.text
    assert "could not be decoded" in response.json()["error"]
    assert limited_predictor.is_serving(feature_rows[0])


@pytest.mark.parametrize("action", ["unload", "load"])
def test_the_repository_api_cannot_unload_or_reload_the_served_model(
    limited_predictor: Any, feature_rows: list[dict], action: str
) -> None:
    """Stock KServe lets any client unload the model (readiness then fails until a restart)."""
    url = f"{limited_predictor.base_url}/v2/repository/models/{limited_predictor.name}/{action}"
    response = requests.post(url, timeout=60)
    assert response.status_code == 400, response.text
    assert "repository API is disabled" in response.json()["error"]
    assert limited_predictor.is_serving(feature_rows[0])


def test_limits_come_from_flags_or_the_environment_and_must_be_positive(tmp_path: Path) -> None:
    assert RequestLimits.from_env(
        {"KFP_CICD_MAX_REQUEST_BYTES": "1024", "KFP_CICD_MAX_ROWS": ""}
    ) == RequestLimits(max_request_bytes=1024)
    with pytest.raises(DeploymentError, match=r"\$KFP_CICD_MAX_ROWS is 'lots', not a whole number"):
        RequestLimits.from_env({"KFP_CICD_MAX_ROWS": "lots"})
    with pytest.raises(DeploymentError, match="max rows must be a positive integer, got 0"):
        RequestLimits(max_rows=0)
    # The command line refuses a bad limit before it loads anything (exit status 2).
    assert serving_main(["--model-dir", str(tmp_path), "--model-name", "m", "--max-request-bytes", "-1"]) == 2


def test_versioned_urls_get_a_404_pointing_at_the_unversioned_one(limited_predictor: Any) -> None:
    """KServe 0.21 answers 501 ("Model versioning not supported yet") on these."""
    for method, path in (("GET", "versions/1"), ("GET", "versions/1/ready"), ("POST", "versions/1/infer")):
        url = f"{limited_predictor.base_url}/v2/models/{limited_predictor.name}/{path}"
        response = requests.request(method, url, timeout=60)
        assert response.status_code == 404, response.text
        assert "one unversioned model" in response.json()["error"]


def test_grpc_has_the_same_byte_limit_and_cannot_unload_the_model(
    limited_predictor: Any, feature_rows: list[dict]
) -> None:
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    values = [1.0] * (MAX_BYTES // 8 + 1000)
    oversized = pb.ModelInferRequest(
        model_name=limited_predictor.name,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="amount",
                datatype="FP64",
                shape=[len(values)],
                contents=pb.InferTensorContents(fp64_contents=values),
            )
        ],
    )
    with grpc.insecure_channel(limited_predictor.grpc_target) as channel:
        stub = GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as too_big:
            stub.ModelInfer(oversized, timeout=60)
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"max ({len(oversized.SerializeToString())} vs. {MAX_BYTES})" in too_big.value.details()
        with pytest.raises(grpc.RpcError) as unload:
            stub.RepositoryModelUnload(
                pb.RepositoryModelUnloadRequest(model_name=limited_predictor.name), timeout=60
            )
        assert unload.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "repository API is disabled" in unload.value.details()
        assert stub.ModelReady(pb.ModelReadyRequest(name=limited_predictor.name), timeout=60).ready
    assert limited_predictor.is_serving(feature_rows[0])
