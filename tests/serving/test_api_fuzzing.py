"""Hypothesis-generated hostile requests against the live predictor's HTTP API (V1, V2, metadata).

Every answer must be below 500 (a malformed request is the client's mistake, never the server's),
a 200 must carry a finite probability in [0, 1] per row, and afterwards the server must still be
ready and serving with its RSS grown less than a bound. The example counts are small so the module
adds seconds, not minutes, to the suite; each run draws new examples.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kfp_cicd.data.synthetic import CATEGORICAL_FEATURES, NUMERIC_FEATURES

MIB = 1024 * 1024
RSS_GROWTH_BOUND = 48 * MIB
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

COLUMNS = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "application/octet-stream",
    "application/cloudevents+json",
    "multipart/form-data",
    "application/json; charset=latin-1",
    "",
]
DATATYPES = ["INT64", "INT32", "UINT8", "FP64", "FP32", "FP16", "BYTES", "BOOL", "fp64", "STRING", ""]

# Values a client might put where a feature belongs: the right kinds, extremes and wrong kinds.
hostile_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([0, 1, -1, 2**63, -(2**63) - 1, 1e308, -1e308, 5e-324, 3.4e38]),
    st.text(max_size=20),
    st.booleans(),
    st.none(),
)
json_values = st.recursive(
    hostile_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _row(base: dict[str, Any], changes: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    return {key: value for key, value in {**base, **changes}.items() if key not in dropped}


@st.composite
def v1_bodies(draw: st.DrawFn, base_rows: list[dict[str, Any]]) -> bytes:
    """V1 bodies: mostly near-valid rows with hostile values; any JSON, NaN/Infinity tokens, deep nesting."""
    kind = draw(st.sampled_from(["rows", "rows", "any json", "tokens", "deep"]))
    if kind == "any json":
        return json.dumps(draw(json_values)).encode()
    if kind == "deep":  # nesting far beyond any parser's recursion limit
        depth = draw(st.integers(min_value=1, max_value=20_000))
        return b'{"instances": ' + b"[" * depth + b"]" * depth + b"}"
    count = draw(st.integers(min_value=0, max_value=4))
    rows = [
        _row(
            base_rows[i % len(base_rows)],
            draw(st.dictionaries(st.sampled_from([*COLUMNS, "extra"]), hostile_scalars, max_size=3)),
            draw(st.lists(st.sampled_from(COLUMNS), max_size=2)),
        )
        for i in range(count)
    ]
    key = draw(st.sampled_from(["instances", "inputs", "rows"]))
    text = json.dumps({key: rows})
    if kind == "tokens" and rows:
        token = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-0", "1" * 400, "nul"]))
        text = text.replace('"amount": ', f'"amount": {token}, "_": ', 1)
    return text.encode()


@st.composite
def v2_bodies(draw: st.DrawFn, base_rows: list[dict[str, Any]], inputs: list[dict[str, Any]]) -> bytes:
    """V2 bodies: tensors with mismatched shapes, datatypes, data and names, or any JSON."""
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        return json.dumps(draw(json_values)).encode()
    count = draw(st.integers(min_value=0, max_value=3))
    tensors = []
    for spec in inputs:
        if draw(st.integers(min_value=0, max_value=12)) == 0:
            continue  # a missing column
        data: Any = [row[spec["name"]] for row in base_rows[:count]]
        tensor = {"name": spec["name"], "datatype": spec["datatype"], "shape": [count], "data": data}
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            tensor["datatype"] = draw(st.sampled_from(DATATYPES))
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            tensor["shape"] = draw(st.lists(st.integers(min_value=-3, max_value=10**12), max_size=3))
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            tensor["data"] = draw(st.one_of(st.lists(hostile_scalars, max_size=4), json_values))
        if draw(st.integers(min_value=0, max_value=10)) == 0:
            tensor["name"] = draw(st.text(max_size=10))
        tensors.append(tensor)
    extra = draw(st.dictionaries(st.sampled_from(["id", "parameters", "outputs"]), json_values, max_size=1))
    return json.dumps({"inputs": tensors, **extra}).encode()


def _check_answer(response: requests.Response, body: bytes) -> None:
    shown = body[:300]
    assert response.status_code < 500, f"HTTP {response.status_code} for {shown!r}: {response.text[:500]}"
    if response.status_code != 200:
        return
    answer = response.json()
    if "specversion" in answer:  # a CloudEvents request gets its answer wrapped in one
        answer = answer["data"]
    if "predictions" in answer:
        probabilities = [row["probability"] for row in answer["predictions"]]
    else:
        outputs = {output["name"]: output for output in answer["outputs"]}
        probabilities = outputs["probability"]["data"]
    assert all(isinstance(p, float) and math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities), (
        f"non-finite or out-of-range probability for {shown!r}: {probabilities}"
    )


def test_values_that_overflow_the_model_get_a_400_not_a_null_probability(
    limited_predictor: Any, feature_rows: list[dict[str, Any]]
) -> None:
    """``1e200`` is a finite float, so it passes the type checks, then overflows the network (NaN)."""
    rows = [feature_rows[0], {**feature_rows[1], "amount": 1e200}]
    response = requests.post(limited_predictor.v1_url, json={"instances": rows}, timeout=60)
    assert response.status_code == 400, response.text
    assert "row(s) [1] could not be scored" in response.json()["error"]


@pytest.fixture(scope="module")
def rss_before(limited_predictor: Any) -> int:
    return limited_predictor.rss()


@pytest.fixture(scope="module")
def base_rows(feature_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return feature_rows[:4]


def test_hostile_v1_bodies_never_get_a_5xx(
    limited_predictor: Any, rss_before: int, base_rows: list[dict[str, Any]]
) -> None:
    @FUZZ
    @given(body=v1_bodies(base_rows), content_type=st.sampled_from(CONTENT_TYPES[:2] + CONTENT_TYPES))
    def check(body: bytes, content_type: str) -> None:
        headers = {"content-type": content_type} if content_type else {}
        _check_answer(requests.post(limited_predictor.v1_url, data=body, headers=headers, timeout=60), body)

    check()


def test_hostile_v2_bodies_never_get_a_5xx(
    limited_predictor: Any, rss_before: int, base_rows: list[dict[str, Any]], model_metadata: dict
) -> None:
    @FUZZ
    @given(body=v2_bodies(base_rows, model_metadata["inputs"]))
    def check(body: bytes) -> None:
        response = requests.post(
            limited_predictor.v2_url, data=body, headers={"content-type": "application/json"}, timeout=60
        )
        _check_answer(response, body)

    check()


def test_raw_bytes_and_binary_v2_framing_never_get_a_5xx(limited_predictor: Any, rss_before: int) -> None:
    """Arbitrary bytes (non-UTF-8, empty), any content type, with or without the binary header."""

    @FUZZ
    @given(
        body=st.binary(max_size=300),
        content_type=st.sampled_from(CONTENT_TYPES),
        json_length=st.one_of(
            st.none(),
            st.integers(min_value=-5, max_value=400).map(str),
            st.text(alphabet="0123456789abc-+.e", min_size=1, max_size=5),
        ),
        v2=st.booleans(),
    )
    def check(body: bytes, content_type: str, json_length: str | None, v2: bool) -> None:
        headers = {"content-type": content_type} if content_type else {}
        if json_length is not None:
            headers["inference-header-content-length"] = json_length
        url = limited_predictor.v2_url if v2 else limited_predictor.v1_url
        response = requests.post(url, data=body, headers=headers, timeout=60)
        assert response.status_code < 500, (
            f"HTTP {response.status_code} for {body!r} {headers}: {response.text[:300]}"
        )

    check()


def test_metadata_and_readiness_endpoints_never_get_a_5xx(limited_predictor: Any, rss_before: int) -> None:
    @FUZZ
    @given(
        name=st.text(min_size=1, max_size=40),
        path=st.sampled_from(
            [
                "/v2/models/{}",
                "/v2/models/{}/ready",
                "/v1/models/{}",
                "/v2/models/{}/versions/1",
                "/v1/models/{}:predict",
                "/v2/models/{}/infer",
            ]
        ),
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    )
    def check(name: str, path: str, method: str) -> None:
        url = limited_predictor.base_url + path.format(quote(name, safe=""))
        response = requests.request(method, url, timeout=60)
        assert response.status_code < 500, (
            f"{method} {url}: HTTP {response.status_code} {response.text[:300]}"
        )

    check()


def test_the_server_survives_the_fuzzing_with_bounded_memory(
    limited_predictor: Any, rss_before: int, base_rows: list[dict[str, Any]]
) -> None:
    """Runs after the fuzz tests above (file order): still ready, still scoring, RSS bounded."""
    assert limited_predictor.is_serving(base_rows[0])
    growth = limited_predictor.rss() - rss_before
    assert growth < RSS_GROWTH_BOUND, f"RSS grew {growth / MIB:.1f} MiB during fuzzing"
