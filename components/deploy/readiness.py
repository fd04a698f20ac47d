"""Wait until KServe has acted on our last change: generation observed, Ready, traffic as asked.

``Ready=True`` alone proves nothing right after a patch: the condition may still describe the
previous generation. A rollout step counts as done only when ``status.observedGeneration`` has
caught up with ``metadata.generation``, the ``Ready`` condition is ``True`` and the traffic split
in the status is the one we asked for (Knative: the latest revision's percent in
``status.components.predictor.traffic``; Standard: ``status.canaryStatuses``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kfp_cicd.components.deploy.traffic import is_knative
from kfp_cicd.errors import DeploymentError

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
# Model states in which KServe will not become Ready without a new spec.
FAILED_TRANSITIONS = frozenset({"BlockedByFailedLoad", "InvalidSpec"})


class ReadinessTimeout(DeploymentError):
    """The InferenceService did not reach the expected state in time."""


@dataclass(frozen=True)
class ReadyState:
    """What the status said when the step was done."""

    generation: int
    url: str
    canary_url: str | None
    traffic: dict[str, int]
    waited_seconds: float


def _ready_condition(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)


def _traffic(status: dict[str, Any], mode: str) -> tuple[int | None, dict[str, int], str | None]:
    """(percent on the newest revision, revision → percent, the newest revision's tagged URL)."""
    if is_knative(mode):
        entries = ((status.get("components") or {}).get("predictor") or {}).get("traffic") or []
        split = {
            str(e.get("revisionName") or e.get("tag") or "?"): int(e.get("percent") or 0) for e in entries
        }
        latest = [e for e in entries if e.get("latestRevision")]
        if not latest:
            return None, split, None
        return int(latest[0].get("percent") or 0), split, latest[0].get("url")
    canaries = status.get("canaryStatuses") or []
    split = {str(c.get("name")): int(c.get("trafficPercent") or 0) for c in canaries}
    if not canaries:
        return 100, split, None
    return (int(canaries[0].get("trafficPercent") or 0) if canaries[0].get("ready") else None), split, None


def describe(isvc: dict[str, Any]) -> str:
    """One line on where the InferenceService stands (for errors and logs)."""
    status = isvc.get("status") or {}
    ready = _ready_condition(status) or {}
    return (
        f"generation {isvc['metadata'].get('generation')}, observedGeneration "
        f"{status.get('observedGeneration')}, Ready={ready.get('status', 'unknown')}"
        + (f" ({ready.get('reason')}: {ready.get('message')})" if ready.get("message") else "")
    )


def _failed_load(status: dict[str, Any]) -> str | None:
    """KServe's own report that the model cannot load (no point waiting for the timeout)."""
    for model_status in [status.get("modelStatus") or {}] + [
        c.get("modelStatus") or {} for c in status.get("canaryStatuses") or []
    ]:
        if model_status.get("transitionStatus") in FAILED_TRANSITIONS:
            failure = model_status.get("lastFailureInfo") or {}
            return (
                f"{model_status['transitionStatus']}: {failure.get('reason', '')} "
                f"{failure.get('message', '')}"
            ).strip()
    return None


def wait_for_rollout(
    get: Callable[[], dict[str, Any] | None],
    *,
    mode: str,
    expected_percent: int | None,
    timeout: float,
    poll: float = POLL_SECONDS,
) -> ReadyState:
    """Poll ``get()`` until the last change is observed, Ready and at ``expected_percent`` on the
    newest version (None: any split); ReadinessTimeout (with the last status) after ``timeout`` s."""
    started = time.monotonic()
    last: dict[str, Any] | None = None
    while True:
        last = get()
        if last is None:
            raise DeploymentError("the InferenceService disappeared while waiting for it to become Ready")
        status = last.get("status") or {}
        generation = int(last["metadata"].get("generation") or 0)
        caught_up = int(status.get("observedGeneration") or 0) >= generation
        ready = (_ready_condition(status) or {}).get("status") == "True"
        percent, split, canary_url = _traffic(status, mode)
        if caught_up:
            failure = _failed_load(status)
            if failure:
                raise DeploymentError(f"KServe reports the model cannot load: {failure}")
        on_target = expected_percent is None or percent == expected_percent
        if caught_up and ready and status.get("url") and on_target:
            waited = time.monotonic() - started
            log.info("ready after %.1f s: generation %d, traffic %s", waited, generation, split)
            return ReadyState(generation, str(status["url"]), canary_url, split, waited)
        if time.monotonic() - started >= timeout:
            raise ReadinessTimeout(
                f"not Ready within {timeout:.0f} s"
                + (f" with {expected_percent}% on the new version" if expected_percent is not None else "")
                + f": "
                f"{describe(last)}, traffic {split or 'none reported'}"
            )
        time.sleep(poll)
