"""Deploy a version to KServe on a cluster: canary, checks, then promote or roll back.

The steps (each one logged and recorded in the :class:`RolloutReport`):

1. discovery of ``serving.kserve.io/v1beta1`` (missing CRD / unreachable cluster fail here);
2. no InferenceService yet → create it, wait for Ready, check it through ``status.url``;
   the same version already stable → re-apply the spec idempotently, wait, check;
   otherwise → the new version as a canary at N % (``traffic.canary_patch``), wait until Ready with
   ``observedGeneration`` caught up and the split in the status, check it through the canary's URL;
3. checks passed → promote to 100 % (wait again), and only then move the MLflow ``champion``;
   checks failed or timed out → roll back (canary 0 %, the previous revision keeps all traffic) and
   raise :class:`RolloutFailed` with the reason. The champion alias is untouched.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kfp_cicd.components.deploy import traffic
from kfp_cicd.components.deploy.kube_api import InferenceServiceApi
from kfp_cicd.components.deploy.readiness import ReadyState, wait_for_rollout
from kfp_cicd.components.deploy.service_check import CheckPolicy, CheckResult, check_service
from kfp_cicd.errors import DeploymentError
from kfp_cicd.registry.aliases import promote

log = logging.getLogger(__name__)
CREATED, UPDATED_IN_PLACE, PROMOTED = "created", "updated-in-place", "promoted"
ROLLED_BACK, FAILED = "rolled-back", "failed"


@dataclass
class RolloutReport:
    """Exactly what the deployment did, for the task's outputs and its error message."""

    name: str
    namespace: str
    mode: str
    model_name: str
    version: str
    previous_version: str | None = None
    canary_percent: int | None = None
    outcome: str = ""
    reason: str = ""
    url: str = ""
    champion: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    def step(self, text: str) -> None:
        """Record and log one step."""
        log.info("%s/%s: %s", self.namespace, self.name, text)
        self.steps.append(text)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True, default=str)

    def summary(self) -> str:
        """One paragraph for the pipeline UI."""
        head = {
            CREATED: (
                f"created InferenceService {self.namespace}/{self.name} serving version {self.version}"
            ),
            UPDATED_IN_PLACE: f"version {self.version} was already stable; re-applied and re-checked",
            PROMOTED: (
                f"canary of version {self.version} at {self.canary_percent}% passed; promoted to "
                f"100% (previous version {self.previous_version})"
            ),
            ROLLED_BACK: (
                f"ROLLED BACK: canary of version {self.version} failed; version "
                f"{self.previous_version} keeps 100% of traffic"
            ),
            FAILED: f"FAILED: version {self.version} was not deployed",
        }.get(self.outcome, self.outcome)
        champion = (
            f"; champion -> version {self.champion}"
            if self.outcome in (CREATED, UPDATED_IN_PLACE, PROMOTED)
            else "; champion alias unchanged"
        )
        return f"{head} ({self.mode} mode) at {self.url or 'no URL'}: {self.reason}{champion}"


class RolloutFailed(DeploymentError):
    """The new version was rolled back or never became healthy; ``report`` says what happened."""

    def __init__(self, report: RolloutReport) -> None:
        super().__init__(report.summary() + "\nsteps:\n  " + "\n  ".join(report.steps))
        self.report = report


@dataclass(frozen=True)
class RolloutSettings:
    """How a rollout proceeds."""

    canary_percent: int = 10
    ready_timeout: float = 600.0
    poll_seconds: float = 1.0
    checks: CheckPolicy = field(default_factory=CheckPolicy)

    def __post_init__(self) -> None:
        percent = self.canary_percent
        if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
            raise DeploymentError(f"canary_traffic_percent must be an integer in 1..100, got {percent!r}")
        if not self.ready_timeout > 0:
            raise DeploymentError(f"ready_timeout must be positive, got {self.ready_timeout!r}")


def _served_name(manifest: dict[str, Any]) -> str:
    """KServe serves the model under the InferenceService's name (``{{.Name}}`` in the runtime)."""
    return str(manifest["metadata"]["name"])


class ClusterRollout:
    """One rollout of ``manifest`` (already rendered) through ``api``."""

    def __init__(
        self,
        api: InferenceServiceApi,
        manifest: dict[str, Any],
        *,
        mode: str,
        model_name: str,
        version: str,
        tracking_uri: str,
        smoke_rows: list[dict[str, Any]],
        settings: RolloutSettings,
    ) -> None:
        self.api = api
        self.mode = mode
        self.manifest = traffic.with_tag_routing(manifest, mode)
        self.name = _served_name(manifest)
        self.tracking_uri = tracking_uri
        self.rows = smoke_rows
        self.settings = settings
        self.report = RolloutReport(
            name=self.name, namespace=api.namespace, mode=mode, model_name=model_name, version=str(version)
        )

    def _wait(self, expected_percent: int | None) -> ReadyState:
        return wait_for_rollout(
            lambda: self.api.get(self.name),
            mode=self.mode,
            expected_percent=expected_percent,
            timeout=self.settings.ready_timeout,
            poll=self.settings.poll_seconds,
        )

    def _check(self, url: str, what: str) -> CheckResult:
        self.report.step(f"checking {what} at {url}")
        result = check_service(
            url,
            self.name,
            self.rows,
            self.settings.checks,
            ready_timeout=min(30.0, self.settings.ready_timeout),
        )
        self.report.checks.append({"what": what, **result.as_dict()})
        self.report.step(f"{what}: {'passed' if result.passed else 'FAILED'}: {result.reason}")
        return result

    def _promote_champion(self) -> None:
        old = promote(self.tracking_uri, self.report.model_name, self.report.version)
        self.report.champion = self.report.version
        self.report.step(f"MLflow alias champion -> version {self.report.version} (was {old})")

    def run(self) -> RolloutReport:
        """Deploy; returns the report, or raises RolloutFailed (after rolling back) / DeploymentError."""
        self.api.check_api_available()
        existing = self.api.get(self.name)
        if existing is None:
            return self._first_deploy()
        traffic.check_same_mode_family(existing, self.mode)
        annotations = existing["metadata"].get("annotations") or {}
        self.report.previous_version = annotations.get(traffic.VERSION_ANNOTATION)
        desired_uri = traffic.storage_uri_of(self.manifest["spec"]["predictor"])
        if traffic.storage_uri_of(
            traffic.stable_predictor(existing)
        ) == desired_uri and not traffic.pending_canary(existing):
            return self._in_place(existing)
        return self._canary(existing)

    def _finish_or_fail(self, result: CheckResult | None, reason: str, outcome: str) -> RolloutReport:
        """Promote the champion after a passed check; otherwise fail with ``reason``."""
        if result is not None and result.passed:
            self.report.outcome, self.report.reason = outcome, result.reason
            self._promote_champion()
            return self.report
        self.report.outcome, self.report.reason = FAILED, reason
        raise RolloutFailed(self.report)

    def _first_deploy(self) -> RolloutReport:
        self.report.step(f"creating InferenceService (version {self.report.version}, {self.mode} mode)")
        self.api.create(self.manifest)
        try:
            state = self._wait(100)
        except DeploymentError as exc:
            self.report.outcome = FAILED
            self.report.reason = (
                f"{exc}; there is no previous version to roll back to: the "
                "InferenceService stays as created and serves nothing healthy"
            )
            raise RolloutFailed(self.report) from exc
        self.report.url = state.url
        result = self._check(state.url, "new InferenceService")
        return self._finish_or_fail(result, f"{result.reason}; no previous version to roll back to", CREATED)

    def _in_place(self, existing: dict[str, Any]) -> RolloutReport:
        self.report.step(f"version {self.report.version} is already the stable version; re-applying its spec")
        self.api.patch(
            self.name,
            traffic.in_place_patch(existing, self.manifest, self.report.version),
            existing["metadata"].get("resourceVersion"),
        )
        try:
            state = self._wait(100)
        except DeploymentError as exc:
            self.report.outcome, self.report.reason = FAILED, str(exc)
            raise RolloutFailed(self.report) from exc
        self.report.url = state.url
        result = self._check(state.url, "stable version")
        return self._finish_or_fail(result, result.reason, UPDATED_IN_PLACE)

    def _canary(self, existing: dict[str, Any]) -> RolloutReport:
        percent = self.settings.canary_percent
        self.report.canary_percent = percent
        self.report.step(
            f"canary: version {self.report.version} at {percent}% beside version "
            f"{self.report.previous_version}"
        )
        self.api.patch(
            self.name,
            traffic.canary_patch(existing, self.manifest, self.mode, percent, self.report.version),
            existing["metadata"].get("resourceVersion"),
        )
        try:
            state = self._wait(percent)
        except DeploymentError as exc:
            return self._roll_back(f"canary never became Ready: {exc}")
        self.report.url = state.url
        result = self._check(
            state.canary_url or state.url,
            "canary revision" if state.canary_url else "service URL (canary split)",
        )
        if not result.passed:
            return self._roll_back(result.reason)
        current = self.api.get(self.name) or existing
        self.report.step("promoting the canary to 100%")
        self.api.patch(
            self.name,
            traffic.promote_patch(current, self.mode, self.report.version),
            current["metadata"].get("resourceVersion"),
        )
        try:
            state = self._wait(100)
        except DeploymentError as exc:
            return self._roll_back(f"promotion never became Ready: {exc}")
        self.report.url = state.url
        self.report.outcome, self.report.reason = PROMOTED, result.reason
        self._promote_champion()
        return self.report

    def _roll_back(self, reason: str) -> RolloutReport:
        """Canary to 0 %, wait (best effort) until KServe observed it, then fail with ``reason``."""
        self.report.step(f"rolling back: {reason}")
        current = self.api.get(self.name)
        if current is not None:
            self.api.patch(
                self.name,
                traffic.rollback_patch(current, self.mode, reason),
                current["metadata"].get("resourceVersion"),
            )
            started = time.monotonic()
            try:
                self._wait(None)
                self.report.step(
                    f"rollback observed after {time.monotonic() - started:.1f} s; version "
                    f"{self.report.previous_version} serves all traffic"
                )
            except DeploymentError as exc:
                self.report.step(f"rollback patched but not yet observed Ready: {exc}")
        self.report.outcome, self.report.reason = ROLLED_BACK, reason
        raise RolloutFailed(self.report)
