"""The InferenceService changes of a canary rollout, for both KServe deployment modes.

KServe splits traffic differently per mode, so each step is a JSON merge patch built here:

- **Knative / Serverless**: the new predictor replaces ``spec.predictor`` with
  ``canaryTrafficPercent: N``; KServe keeps the last revision that had 100 % (the previous one)
  serving the rest. Promote = drop ``canaryTrafficPercent`` (100 % to the latest revision);
  roll back = ``canaryTrafficPercent: 0`` (the previous revision keeps all traffic). Tag routing is
  switched on so the canary revision has its own URL (``latest-…``) for the smoke checks.
- **Standard / RawDeployment** (KServe >= 0.20): the stable ``spec.predictor`` stays untouched and
  the new predictor goes to ``spec.canary: [{trafficPercent: N, predictor: …}]``. Promote = the
  canary's predictor becomes ``spec.predictor`` and ``spec.canary`` is removed; roll back =
  ``trafficPercent: 0`` on the canary entry.
"""

from __future__ import annotations

import copy
from typing import Any

from kfp_cicd.components.deploy.inference_service import (
    DEPLOYMENT_MODE_ANNOTATION,
    SCALE_TO_ZERO_MODES,
)
from kfp_cicd.errors import DeploymentError

TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
VERSION_ANNOTATION = "kfp-cicd.io/model-version"
CANARY_VERSION_ANNOTATION = "kfp-cicd.io/canary-version"
ROLLOUT_ANNOTATION = "kfp-cicd.io/rollout"
CANARY_CONTAINER_NAME = "kserve-container"


def is_knative(mode: str) -> bool:
    """Whether ``mode`` is the Knative (Serverless) family; otherwise Standard (RawDeployment)."""
    return mode in SCALE_TO_ZERO_MODES


def mode_of(isvc: dict[str, Any]) -> str:
    """The deployment mode an existing InferenceService was created with (KServe's default: Knative)."""
    annotations = isvc.get("metadata", {}).get("annotations") or {}
    return (
        annotations.get(DEPLOYMENT_MODE_ANNOTATION)
        or (isvc.get("status") or {}).get("deploymentMode")
        or "Serverless"
    )


def check_same_mode_family(existing: dict[str, Any], desired_mode: str) -> None:
    """KServe cannot switch a live InferenceService between Knative and Standard: refuse early."""
    current = mode_of(existing)
    if is_knative(current) != is_knative(desired_mode):
        name = existing["metadata"]["name"]
        raise DeploymentError(
            f"InferenceService {name!r} runs in deployment mode {current!r}; KServe cannot "
            f"switch it to {desired_mode!r} in place. Deploy with deployment_mode="
            f"{current!r}, or delete the InferenceService first (downtime) to change modes"
        )


def merge_patch_to(current: Any, desired: Any) -> Any:
    """A JSON merge patch (RFC 7386) turning ``current`` into ``desired`` (keys to delete → None)."""
    if not isinstance(current, dict) or not isinstance(desired, dict):
        return copy.deepcopy(desired)
    patch: dict[str, Any] = {}
    for key in current:
        if key not in desired:
            patch[key] = None
    for key, value in desired.items():
        if key not in current:
            patch[key] = copy.deepcopy(value)
        elif current[key] != value:
            patch[key] = merge_patch_to(current[key], value)
    return patch


def stable_predictor(isvc: dict[str, Any]) -> dict[str, Any]:
    """The predictor spec of the stable (100 %) version, without any canary setting."""
    predictor = copy.deepcopy(isvc["spec"]["predictor"])
    predictor.pop("canaryTrafficPercent", None)
    return predictor


def storage_uri_of(predictor: dict[str, Any]) -> str | None:
    """``model.storageUri`` of a predictor spec (None for other predictor shapes)."""
    return (predictor.get("model") or {}).get("storageUri")


def pending_canary(isvc: dict[str, Any]) -> bool:
    """Whether a canary (even one rolled back to 0 %) is still in the spec."""
    spec = isvc.get("spec") or {}
    return "canaryTrafficPercent" in (spec.get("predictor") or {}) or bool(spec.get("canary"))


def _metadata_patch(
    existing: dict[str, Any], desired: dict[str, Any], extra_annotations: dict[str, str | None]
) -> dict[str, Any]:
    """Labels and annotations of ``desired`` (plus ``extra_annotations``) over the existing ones."""
    annotations: dict[str, str | None] = dict(desired["metadata"].get("annotations") or {})
    annotations.update(extra_annotations)
    patch: dict[str, Any] = {"annotations": annotations}
    if desired["metadata"].get("labels"):
        patch["labels"] = dict(desired["metadata"]["labels"])
    del existing  # the merge patch keeps every other existing label/annotation
    return patch


def with_tag_routing(manifest: dict[str, Any], mode: str) -> dict[str, Any]:
    """The manifest with tag routing on in Knative mode (a URL per revision for canary checks)."""
    manifest = copy.deepcopy(manifest)
    if is_knative(mode):
        manifest["metadata"].setdefault("annotations", {})[TAG_ROUTING_ANNOTATION] = "true"
    return manifest


def in_place_patch(existing: dict[str, Any], desired: dict[str, Any], version: str) -> dict[str, Any]:
    """Re-apply the same version (idempotent): spec and metadata exactly as desired, no canary."""
    patch_spec = merge_patch_to(existing.get("spec") or {}, desired["spec"])
    return {
        "metadata": _metadata_patch(
            existing,
            desired,
            {VERSION_ANNOTATION: version, CANARY_VERSION_ANNOTATION: None, ROLLOUT_ANNOTATION: "stable"},
        ),
        "spec": patch_spec,
    }


def canary_patch(
    existing: dict[str, Any], desired: dict[str, Any], mode: str, percent: int, version: str
) -> dict[str, Any]:
    """Start the rollout: the new predictor at ``percent`` % beside the stable version."""
    new_predictor = copy.deepcopy(desired["spec"]["predictor"])
    metadata = _metadata_patch(
        existing, desired, {CANARY_VERSION_ANNOTATION: version, ROLLOUT_ANNOTATION: f"canary {percent}%"}
    )
    # The version annotation keeps naming the stable version until promotion (None: unknown, removed).
    metadata["annotations"][VERSION_ANNOTATION] = (existing["metadata"].get("annotations") or {}).get(
        VERSION_ANNOTATION
    )
    if is_knative(mode):
        new_predictor["canaryTrafficPercent"] = percent
        return {
            "metadata": metadata,
            "spec": {
                "predictor": merge_patch_to(existing["spec"]["predictor"], new_predictor),
                "canary": None,
            },
        }
    # The CRD requires a container name on spec.canary[].predictor.model (not on spec.predictor.model).
    new_predictor["model"].setdefault("name", CANARY_CONTAINER_NAME)
    return {
        "metadata": metadata,
        "spec": {"canary": [{"trafficPercent": percent, "predictor": new_predictor}]},
    }


def promote_patch(current: dict[str, Any], mode: str, version: str) -> dict[str, Any]:
    """All traffic to the canary's version."""
    metadata = {
        "annotations": {
            VERSION_ANNOTATION: version,
            CANARY_VERSION_ANNOTATION: None,
            ROLLOUT_ANNOTATION: "promoted",
        }
    }
    if is_knative(mode):
        return {"metadata": metadata, "spec": {"predictor": {"canaryTrafficPercent": None}}}
    canary = (current["spec"].get("canary") or [None])[0]
    if not canary:
        raise DeploymentError(
            f"InferenceService {current['metadata']['name']!r} has no spec.canary to "
            "promote (changed by someone else during the rollout?)"
        )
    return {
        "metadata": metadata,
        "spec": {
            "predictor": merge_patch_to(current["spec"]["predictor"], canary["predictor"]),
            "canary": None,
        },
    }


def rollback_patch(current: dict[str, Any], mode: str, reason: str) -> dict[str, Any]:
    """Canary to 0 %: the previous (stable) revision keeps all traffic."""
    metadata = {"annotations": {ROLLOUT_ANNOTATION: f"rolled back: {reason[:200]}"}}
    if is_knative(mode):
        return {"metadata": metadata, "spec": {"predictor": {"canaryTrafficPercent": 0}}}
    canary = copy.deepcopy((current["spec"].get("canary") or [None])[0])
    if not canary:
        return {"metadata": metadata}
    canary["trafficPercent"] = 0
    return {"metadata": metadata, "spec": {"canary": [canary]}}
