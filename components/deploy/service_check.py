"""Decide whether a deployed version may take all traffic: smoke test, then error rate and latency.

First the V1/V2 smoke test (``smoke.smoke_test``: ready, both protocols answer the holdout rows
with valid, identical predictions). Then ``requests`` single-row V1 requests through the same URL:
the share that fail (non-200, wrong answer shape, no connection) must not exceed
``max_error_rate`` and their p95 latency must stay under ``max_p95_latency_ms``. The result always
says why it passed or failed; it never raises for a bad service (the caller rolls back).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import requests

from kfp_cicd.components.deploy.smoke import smoke_test
from kfp_cicd.errors import DeploymentError


@dataclass(frozen=True)
class CheckPolicy:
    """Thresholds a new version must meet (validated on construction)."""

    requests: int = 20
    max_error_rate: float = 0.0
    max_p95_latency_ms: float = 1000.0
    request_timeout: float = 10.0

    def __post_init__(self) -> None:
        count = self.requests
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 10_000:
            raise DeploymentError(f"smoke_requests must be an integer in 0..10000, got {self.requests!r}")
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise DeploymentError(f"max_error_rate must be in [0, 1], got {self.max_error_rate!r}")
        if not self.max_p95_latency_ms > 0 or not self.request_timeout > 0:
            raise DeploymentError("max_p95_latency_ms and the request timeout must be positive")


@dataclass(frozen=True)
class CheckResult:
    """What the checks measured and the verdict, with the reason in words."""

    url: str
    passed: bool
    reason: str
    smoke_summary: str
    requests: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _one_request(
    session: requests.Session, url: str, row: dict[str, Any], timeout: float
) -> tuple[bool, float]:
    """(answered correctly, latency ms) for one single-row V1 request."""
    started = time.perf_counter()
    try:
        response = session.post(url, json={"instances": [row]}, timeout=timeout)
        body = response.json() if response.status_code == 200 else None
        good = (
            body is not None
            and len(body.get("predictions", [])) == 1
            and 0.0 <= float(body["predictions"][0]["probability"]) <= 1.0
        )
    except (requests.RequestException, ValueError, KeyError, TypeError, AttributeError):
        good = False
    return good, (time.perf_counter() - started) * 1000.0


def check_service(
    base_url: str,
    model_name: str,
    rows: list[dict[str, Any]],
    policy: CheckPolicy,
    ready_timeout: float = 30.0,
) -> CheckResult:
    """Run the smoke test and the error-rate/latency check against ``base_url``."""
    base_url = base_url.rstrip("/")
    try:
        smoke = smoke_test(base_url, model_name, rows, timeout=max(ready_timeout, policy.request_timeout))
    except DeploymentError as exc:
        return CheckResult(base_url, False, f"smoke test failed: {exc}", "", 0, 0, None, None)
    url = f"{base_url}/v1/models/{model_name}:predict"
    outcomes: list[tuple[bool, float]] = []
    with requests.Session() as session:
        for index in range(policy.requests):
            outcomes.append(_one_request(session, url, rows[index % len(rows)], policy.request_timeout))
    latencies = [ms for _, ms in outcomes]
    errors = sum(1 for good, _ in outcomes if not good)
    p50 = _percentile(latencies, 0.50) if latencies else None
    p95 = _percentile(latencies, 0.95) if latencies else None
    rate = errors / len(outcomes) if outcomes else 0.0
    if rate > policy.max_error_rate:
        reason = (
            f"error rate {rate:.1%} ({errors} of {len(outcomes)} requests) exceeds "
            f"max_error_rate {policy.max_error_rate:.1%}"
        )
        return CheckResult(base_url, False, reason, smoke.summary(), len(outcomes), errors, p50, p95)
    if p95 is not None and p95 > policy.max_p95_latency_ms:
        reason = f"p95 latency {p95:.1f} ms exceeds max_p95_latency_ms {policy.max_p95_latency_ms:.0f}"
        return CheckResult(base_url, False, reason, smoke.summary(), len(outcomes), errors, p50, p95)
    reason = f"smoke test passed; {len(outcomes)} requests, {errors} errors" + (
        f", p50 {p50:.1f} ms, p95 {p95:.1f} ms" if p95 is not None else ""
    )
    return CheckResult(base_url, True, reason, smoke.summary(), len(outcomes), errors, p50, p95)
