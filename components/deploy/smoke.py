"""Smoke-test a running predictor over both protocols before anyone relies on it.

A deployment counts as good only when the server is ready, answers a V1 ``:predict`` and a V2
``/infer`` request for the same rows with HTTP 200, returns one probability in [0, 1] and one 0/1
prediction per row, and both protocols agree. Any failure raises :class:`DeploymentError` carrying
the server's own response body, which usually names the offending column.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import requests

from kfp_cicd.errors import DeploymentError

AGREEMENT_TOLERANCE = 1e-9
READY_POLL_SECONDS = 0.25
_BODY_CHARS = 2000
_INTEGER_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})


class Prediction(NamedTuple):
    """One row's answer: the positive-class probability and the thresholded 0/1 label."""

    probability: float
    prediction: int


@dataclass(frozen=True)
class SmokeResult:
    """What both protocols answered for the smoke rows, and how long each request took."""

    v1_predictions: tuple[Prediction, ...]
    v2_predictions: tuple[Prediction, ...]
    v1_latency_ms: float
    v2_latency_ms: float

    @property
    def latency_ms(self) -> float:
        """The slower of the two requests."""
        return max(self.v1_latency_ms, self.v2_latency_ms)

    def summary(self) -> str:
        """One line for logs and the pipeline UI."""
        probabilities = ", ".join(f"{p.probability:.4f}" for p in self.v1_predictions)
        return (
            f"{len(self.v1_predictions)} rows, V1 and V2 agree; probabilities [{probabilities}]; "
            f"latency V1 {self.v1_latency_ms:.1f} ms, V2 {self.v2_latency_ms:.1f} ms"
        )


def _body(response: requests.Response) -> str:
    text = response.text
    return text if len(text) <= _BODY_CHARS else text[:_BODY_CHARS] + "…"


def _native(value: Any) -> Any:
    """A JSON-ready Python value: numpy scalars unboxed, NaN (a missing value in pandas) as null."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def is_ready(base_url: str, model_name: str, timeout: float = 2.0) -> bool:
    """Whether the server and the model both report ready (V2 health endpoints); never raises."""
    try:
        for path in ("/v2/health/ready", f"/v2/models/{model_name}/ready"):
            if requests.get(f"{base_url}{path}", timeout=timeout).status_code != 200:
                return False
    except requests.RequestException:
        return False
    return True


def wait_until_ready(
    base_url: str, model_name: str, timeout: float, still_running: Callable[[], bool] | None = None
) -> None:
    """Poll the health endpoints until ready; DeploymentError after ``timeout`` seconds, or at once
    when ``still_running`` says the server process is gone."""
    deadline = time.monotonic() + timeout
    while True:
        if still_running is not None and not still_running():
            raise DeploymentError(f"the predictor for {model_name} exited before it became ready")
        if is_ready(base_url, model_name, timeout=min(2.0, max(timeout, 0.1))):
            return
        if time.monotonic() >= deadline:
            raise DeploymentError(
                f"{model_name} at {base_url} did not become ready within {timeout:.0f} s "
                f"(GET /v2/health/ready and /v2/models/{model_name}/ready)"
            )
        time.sleep(READY_POLL_SECONDS)


def _call(method: str, url: str, what: str, timeout: float, **kwargs: Any) -> tuple[Any, float]:
    """Send one request; (parsed JSON body, latency ms), or DeploymentError with the server's body."""
    started = time.perf_counter()
    try:
        response = requests.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise DeploymentError(f"{what}: could not reach {url}: {exc}") from exc
    latency_ms = (time.perf_counter() - started) * 1000.0
    if response.status_code != 200:
        raise DeploymentError(f"{what}: {url} answered HTTP {response.status_code}: {_body(response)}")
    try:
        return response.json(), latency_ms
    except ValueError as exc:
        raise DeploymentError(f"{what}: {url} answered 200 without JSON: {_body(response)}") from exc


def _checked(predictions: list[Prediction], rows: int, what: str, body: Any) -> tuple[Prediction, ...]:
    """Refuse answers with the wrong row count, probabilities outside [0, 1] or labels not 0/1."""
    if len(predictions) != rows:
        raise DeploymentError(
            f"{what}: expected {rows} predictions, got {len(predictions)}: {str(body)[:_BODY_CHARS]}"
        )
    for index, (probability, label) in enumerate(predictions):
        if not (isinstance(probability, float) and 0.0 <= probability <= 1.0) or label not in (0, 1):
            raise DeploymentError(
                f"{what}: row {index} got probability {probability!r} and prediction "
                f"{label!r}; expected a probability in [0, 1] and a 0/1 prediction"
            )
    return tuple(predictions)


def _parse_v1(body: Any, rows: int) -> tuple[Prediction, ...]:
    what = "V1 predict"
    try:
        answers = body["predictions"]
        predictions = [Prediction(float(a["probability"]), a["prediction"]) for a in answers]
    except (KeyError, TypeError, ValueError) as exc:
        raise DeploymentError(
            f"{what}: unexpected response {str(body)[:_BODY_CHARS]}; expected "
            '{"predictions": [{"probability": p, "prediction": 0|1}, ...]}'
        ) from exc
    return _checked(predictions, rows, what, body)


def _parse_v2(body: Any, rows: int) -> tuple[Prediction, ...]:
    what = "V2 infer"
    try:
        outputs = {output["name"]: output["data"] for output in body["outputs"]}
        predictions = [
            Prediction(float(p), y)
            for p, y in zip(outputs["probability"], outputs["prediction"], strict=True)
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise DeploymentError(
            f"{what}: unexpected response {str(body)[:_BODY_CHARS]}; expected outputs "
            "'probability' and 'prediction' with one value per row"
        ) from exc
    return _checked(predictions, rows, what, body)


def _tensor_value(value: Any, datatype: str) -> Any:
    """A smoke row's value in the JSON form of ``datatype``."""
    value = _native(value)
    if value is None:
        return None  # the server explains what it wants instead
    if datatype in _INTEGER_TYPES and isinstance(value, float) and value.is_integer():
        return int(value)
    if datatype in _FLOAT_TYPES and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if datatype == "BYTES" and not isinstance(value, str):
        return str(value)
    return value


def v2_inputs(rows: list[dict[str, Any]], metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """One V2 input tensor per input the model's metadata lists, built from the rows."""
    try:
        specs = [(spec["name"], spec["datatype"]) for spec in metadata["inputs"]]
    except (KeyError, TypeError) as exc:
        raise DeploymentError(
            f"model metadata lists no usable inputs: {str(metadata)[:_BODY_CHARS]}"
        ) from exc
    inputs = []
    for name, datatype in specs:
        missing = [index for index, row in enumerate(rows) if name not in row]
        if missing:
            raise DeploymentError(
                f"smoke row {missing[0]} has no value for model input {name!r}; give "
                f"every smoke row all of {[n for n, _ in specs]}"
            )
        data = [_tensor_value(row[name], datatype) for row in rows]
        inputs.append({"name": name, "datatype": datatype, "shape": [len(rows)], "data": data})
    return inputs


def _check_agreement(v1: tuple[Prediction, ...], v2: tuple[Prediction, ...]) -> None:
    for index, (a, b) in enumerate(zip(v1, v2, strict=True)):
        if abs(a.probability - b.probability) > AGREEMENT_TOLERANCE or a.prediction != b.prediction:
            raise DeploymentError(
                f"V1 and V2 disagree on row {index}: V1 {tuple(a)} vs V2 {tuple(b)}; the "
                "two protocols must reach the same model"
            )


def smoke_test(base_url: str, model_name: str, rows: list[dict], timeout: float = 10) -> SmokeResult:
    """Wait for readiness, then score ``rows`` over V1 and V2 and check the answers (see module doc).

    ``base_url`` is the server root (``http://127.0.0.1:8080``); ``rows`` hold one value per model
    input column each; ``timeout`` bounds the readiness wait and each request, in seconds.
    """
    if not rows:
        raise DeploymentError("no smoke rows given: pass at least one row of feature values")
    base_url = base_url.rstrip("/")
    wait_until_ready(base_url, model_name, timeout)
    rows = [{key: _native(value) for key, value in row.items()} for row in rows]
    metadata, _ = _call("GET", f"{base_url}/v2/models/{model_name}", "V2 model metadata", timeout)
    v1_body, v1_ms = _call(
        "POST", f"{base_url}/v1/models/{model_name}:predict", "V1 predict", timeout, json={"instances": rows}
    )
    v2_request = {"id": "kfp-cicd-smoke", "inputs": v2_inputs(rows, metadata)}
    v2_body, v2_ms = _call(
        "POST", f"{base_url}/v2/models/{model_name}/infer", "V2 infer", timeout, json=v2_request
    )
    v1 = _parse_v1(v1_body, len(rows))
    v2 = _parse_v2(v2_body, len(rows))
    _check_agreement(v1, v2)
    return SmokeResult(v1_predictions=v1, v2_predictions=v2, v1_latency_ms=v1_ms, v2_latency_ms=v2_ms)
