"""InferenceServices in the FAKE Kubernetes API server (``fake_kubernetes_api``): KServe's part.

No cluster exists here. This FAKE does what the deploy step relies on from KServe:

- request bodies checked against the real CRD's ``openAPIV3Schema`` (``../shared/crds``) and
  answered as the API server does: a schema violation is 422 ``Invalid`` with one
  ``details.causes`` entry per field (``FieldValueRequired``, ``FieldValueNotSupported``,
  ``FieldValueTypeInvalid``, ``FieldValueInvalid``) and the server's wording; an unknown field is
  pruned before storing (structural-schema pruning) and named in a ``Warning: 299`` header (the
  server's default ``fieldValidation=Warn`` for clients that set none, as the kubernetes client).
  Without the CRD the fake cannot check: :func:`require_inference_service_crd` skips the test, and a
  request that reaches the fake anyway is answered 500, never silently accepted;
- a "controller" that moves the status the way KServe does, ``reconcile_delay`` seconds after each
  change: ``observedGeneration``, the ``Ready`` condition, revisions and their traffic split
  (Knative: ``canaryTrafficPercent`` against the last revision rolled out at 100 %; Standard:
  ``spec.canary`` and ``canaryStatuses``), ``status.url``;
- an "ingress" under ``/ingress/<ns>/<name>`` that forwards requests, by the traffic split, to the
  REAL predictor process serving each revision's ``storageUri`` (``backends``); a revision whose
  storageUri has no backend never becomes ready. Every forwarded request is recorded in ``proxied``.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fake_kubernetes_resource import Reply, Resource, Route, StoredObject

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
CRD_PATH = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "crds"
    / "serving.kserve.io_inferenceservices.yaml"
)
_INGRESS = re.compile(r"^/ingress/(?P<ns>[^/]+)/(?P<name>[^/]+)(?:/_tag/(?P<tag>[^/]+))?(?P<rest>/.*)?$")
KNATIVE_MODES = ("Serverless", "Knative")

_SCHEMA_VALIDATOR: Any = None
CRD_ABSENT = (
    f"{CRD_PATH} is absent (a fresh clone has no ../shared/crds): the FAKE Kubernetes API cannot check "
    "InferenceService bodies against the CRD"
)


def require_inference_service_crd() -> None:
    """Skip the calling test when the CRD is absent: a fake that cannot check must not accept."""
    if not CRD_PATH.is_file():
        import pytest

        pytest.skip(CRD_ABSENT)


def _spec_validator() -> Any:
    global _SCHEMA_VALIDATOR
    if _SCHEMA_VALIDATOR is None:
        import yaml
        from jsonschema import Draft7Validator

        crd = yaml.load(CRD_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        schema = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)["schema"]["openAPIV3Schema"]
        _SCHEMA_VALIDATOR = Draft7Validator(schema["properties"]["spec"])
    return _SCHEMA_VALIDATOR


def _field(path: Any, prefix: str = "spec") -> str:
    """A JSON path as the API server writes it: ``spec.canary[0].predictor.minReplicas``."""
    text = prefix
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _json_type(value: Any) -> str:
    """The JSON type name the API server quotes in a type error."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {str: "string", float: "number", dict: "object", list: "array"}.get(type(value), "null")


def crd_spec_causes(spec: dict[str, Any]) -> list[dict[str, str]]:
    """``details.causes`` of the API server's 422 for ``spec`` (empty: valid). Needs the CRD."""
    causes = []
    for error in sorted(_spec_validator().iter_errors(spec), key=lambda e: list(map(str, e.path))):
        field_path = _field(error.path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            field_path = f"{field_path}.{missing}" if missing else field_path
            causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": field_path})
        elif error.validator == "enum":
            supported = ", ".join(f'"{v}"' for v in error.validator_value)
            causes.append(
                {
                    "reason": "FieldValueNotSupported",
                    "message": f'Unsupported value: "{error.instance}": supported values: {supported}',
                    "field": field_path,
                }
            )
        elif error.validator == "type":
            causes.append(
                {
                    "reason": "FieldValueTypeInvalid",
                    "message": f'Invalid value: "{_json_type(error.instance)}": {field_path} in body must '
                    f'be of type {error.validator_value}: "{_json_type(error.instance)}"',
                    "field": field_path,
                }
            )
        else:
            wording = {
                "minimum": f"should be greater than or equal to {error.validator_value}",
                "maximum": f"should be less than or equal to {error.validator_value}",
                "pattern": f"should match '{error.validator_value}'",
            }.get(error.validator, error.message)
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: {json.dumps(error.instance)}: {field_path} in body {wording}",
                    "field": field_path,
                }
            )
    return causes


def crd_spec_errors(spec: dict[str, Any]) -> list[str]:
    """Errors of ``spec`` against the real InferenceService CRD, as ``field: message`` lines.

    Raises ``FileNotFoundError`` when the CRD is absent: nothing is accepted unchecked.
    """
    if not CRD_PATH.is_file():
        raise FileNotFoundError(CRD_ABSENT)
    return [f"{c['field']}: {c['message']}" for c in crd_spec_causes(spec)]


def prune_unknown_fields(value: Any, schema: dict[str, Any] | None = None, path: str = "spec") -> list[str]:
    """Remove (in place) the fields the CRD's structural schema does not know; their paths."""
    schema = _spec_validator().schema if schema is None else schema
    unknown: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key in list(value):
            if properties is not None and key in properties:
                unknown += prune_unknown_fields(value[key], properties[key], f"{path}.{key}")
            elif isinstance(additional, dict):
                unknown += prune_unknown_fields(value[key], additional, f"{path}.{key}")
            elif properties is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                del value[key]
                unknown.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            unknown += prune_unknown_fields(item, schema["items"], f"{path}[{index}]")
    return unknown


@dataclass
class Revision:
    """A predictor revision: one predictor spec, served by one backend (or never ready)."""

    name: str
    predictor: dict[str, Any]

    @property
    def storage_uri(self) -> str:
        return (self.predictor.get("model") or {}).get("storageUri", "")


@dataclass
class Stored(StoredObject):
    """One InferenceService and the fake controller's bookkeeping."""

    revisions: list[Revision] = field(default_factory=list)
    rolled_out: str | None = None  # Knative: the last revision that had 100 %
    changed_at: float = 0.0
    split: dict[str, int] = field(default_factory=dict)
    rr_counter: int = 0


class InferenceServices(Resource):
    """``serving.kserve.io/v1beta1`` InferenceServices with KServe's controller and ingress."""

    group, version, plural, kind = GROUP, VERSION, PLURAL, "InferenceService"
    verbs = ("create", "get", "list", "patch")
    refusals = {"update": "the deploy step must not PUT (it patches)"}

    def __init__(self, lock: threading.RLock, host: str, reconcile_delay: float) -> None:
        super().__init__()
        self.lock, self.host, self.reconcile_delay = lock, host, reconcile_delay
        self.backends: dict[str, str] = {}
        self.proxied: list[dict[str, Any]] = []
        self.warnings: list[str] = []  # unknown fields pruned, as the API server's Warning headers

    def reset(self) -> None:
        super().reset()
        self.backends.clear()
        self.proxied.clear()
        self.warnings.clear()

    def snapshot(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of the stored InferenceService, or None."""
        with self.lock:
            stored = self.store.get((namespace, name))
            return copy.deepcopy(stored.obj) if stored else None

    def revision_for(self, namespace: str, name: str, revision: str) -> Revision:
        with self.lock:
            return next(r for r in self.store[(namespace, name)].revisions if r.name == revision)

    # --- hooks -------------------------------------------------------------------------------------

    def new_entry(self, obj: dict[str, Any]) -> Stored:
        return Stored(obj, changed_at=time.monotonic())

    def spec_errors(self, spec: dict[str, Any]) -> list[str]:
        return crd_spec_errors(spec)

    def answer(self, verb: str, namespace: str, name: str | None, body: Any, content_type: str) -> Reply:
        """The API server's checks first: CRD present, unknown fields pruned (and warned about)."""
        if verb not in ("create", "patch") or not isinstance(body, dict):
            return super().answer(verb, namespace, name, body, content_type)
        if not CRD_PATH.is_file():
            return self.failure(
                500, "InternalError", f"FAKE: {CRD_ABSENT}; the test should have been skipped"
            )
        unknown = prune_unknown_fields(body["spec"]) if isinstance(body.get("spec"), dict) else []
        reply = super().answer(verb, namespace, name, body, content_type)
        if unknown:
            self.warnings.extend(unknown)
            reply.headers["Warning"] = ", ".join(f'299 - "unknown field \\"{field}\\""' for field in unknown)
        return reply

    def _invalid(self, name: str, spec: dict[str, Any]) -> Reply | None:
        """422 Invalid, worded and detailed as the API server's validation of a CRD's schema."""
        causes = crd_spec_causes(spec)
        if not causes:
            return None
        listed = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
        message = f'{self.kind}.{self.group} "{name}" is invalid: ' + (
            f"[{listed}]" if len(causes) > 1 else listed
        )
        return Reply(
            422,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": "Invalid",
                "details": {"name": name, "group": self.group, "kind": self.kind, "causes": causes},
                "code": 422,
            },
        )

    def spec_changed(self, entry: Stored) -> None:
        entry.changed_at = time.monotonic()

    def routes(self) -> list[Route]:
        return [Route(_INGRESS, self._proxy, recorded=False)]

    # --- the "controller" --------------------------------------------------------------------------

    def reconcile(self) -> None:
        for (namespace, name), stored in self.store.items():
            status = stored.obj.get("status") or {}
            behind = status.get("observedGeneration") != stored.obj["metadata"]["generation"]
            if behind and time.monotonic() - stored.changed_at >= self.reconcile_delay:
                self._reconcile(namespace, name, stored)

    def _revision(self, stored: Stored, predictor: dict[str, Any]) -> Revision:
        """The revision for this predictor spec, created when the spec is new (like Knative does)."""
        spec = {k: v for k, v in predictor.items() if k != "canaryTrafficPercent"}
        for revision in stored.revisions:
            if revision.predictor == spec:
                return revision
        name = f"{stored.obj['metadata']['name']}-predictor-{len(stored.revisions) + 1:05d}"
        revision = Revision(name, copy.deepcopy(spec))
        stored.revisions.append(revision)
        return revision

    def _ready(self, revision: Revision) -> bool:
        return revision.storage_uri in self.backends

    def _reconcile(self, namespace: str, name: str, stored: Stored) -> None:
        obj = stored.obj
        spec = obj["spec"]
        annotations = obj["metadata"].get("annotations") or {}
        mode = annotations.get("serving.kserve.io/deploymentMode", "Serverless")
        base = f"{self.host}/ingress/{namespace}/{name}"
        status: dict[str, Any] = {
            "observedGeneration": obj["metadata"]["generation"],
            "url": base,
            "address": {"url": f"http://{name}.{namespace}.svc.cluster.local"},
            "deploymentMode": mode,
        }
        if mode in KNATIVE_MODES:
            latest = self._revision(stored, spec["predictor"])
            percent = spec["predictor"].get("canaryTrafficPercent")
            stable = next((r for r in stored.revisions if r.name == stored.rolled_out), None)
            if percent is None or stable is None or stable is latest:
                split = {latest.name: 100}
                if self._ready(latest):
                    stored.rolled_out = latest.name
            else:
                split = {stable.name: 100 - int(percent), latest.name: int(percent)}
            traffic = [
                {
                    "revisionName": revision,
                    "percent": share,
                    "latestRevision": revision == latest.name,
                    "tag": "latest" if revision == latest.name else "prev",
                    "url": f"{base}/_tag/{'latest' if revision == latest.name else 'prev'}",
                }
                for revision, share in split.items()
            ]
            status["components"] = {
                "predictor": {
                    "traffic": traffic,
                    "latestCreatedRevision": latest.name,
                    **({"latestReadyRevision": latest.name} if self._ready(latest) else {}),
                    **({"previousRolledoutRevision": stable.name} if stable and stable is not latest else {}),
                }
            }
            serving = [r for r in stored.revisions if split.get(r.name, 0) > 0]
        else:
            stable = self._revision(stored, spec["predictor"])
            split = {stable.name: 100}
            canaries = spec.get("canary") or []
            canary_statuses = []
            serving = [stable]
            if canaries:
                canary = self._revision(stored, canaries[0]["predictor"])
                share = int(canaries[0]["trafficPercent"])
                split = {stable.name: 100 - share, canary.name: share}
                canary_statuses.append(
                    {"name": canary.name, "ready": self._ready(canary), "trafficPercent": share}
                )
                if share > 0:
                    serving.append(canary)
            status["canaryStatuses"] = canary_statuses
            status["components"] = {"predictor": {"latestCreatedRevision": stable.name}}
        not_ready = [r.name for r in serving if not self._ready(r)]
        condition: dict[str, Any] = {"type": "Ready", "status": "False" if not_ready else "True"}
        if not_ready:
            condition.update(reason="RevisionMissing", message=f"revisions {not_ready} have no ready pods")
        status["conditions"] = [condition]
        stored.split = split
        obj["status"] = status

    # --- the "ingress" -----------------------------------------------------------------------------

    def _pick(self, stored: Stored, tag: str | None) -> str | None:
        """The revision a request goes to: by tag, else by the split (deterministic round robin)."""
        if tag:
            traffic = stored.obj["status"].get("components", {}).get("predictor", {}).get("traffic", [])
            return next((t["revisionName"] for t in traffic if t.get("tag") == tag), None)
        weighted = [name for name, share in sorted(stored.split.items()) for _ in range(share)]
        if not weighted:
            return None
        stored.rr_counter += 1
        return weighted[(stored.rr_counter * 37) % len(weighted)]

    def _proxy(self, method: str, match: re.Match[str], body: bytes, headers: Mapping[str, str]) -> Reply:
        with self.lock:
            stored = self.store.get((match["ns"], match["name"]))
            revision_name = self._pick(stored, match["tag"]) if stored else None
            revision = (
                next(r for r in stored.revisions if r.name == revision_name)
                if stored and revision_name
                else None
            )
            backend = self.backends.get(revision.storage_uri) if revision else None
        record = {"revision": revision_name, "path": match["rest"] or "/", "method": method}
        if backend is None:
            record["status"] = 503
            with self.lock:
                self.proxied.append(record)
            return Reply(503, b"no healthy upstream", "text/plain")
        parsed = urlparse(backend)
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        try:
            connection.request(
                method,
                match["rest"] or "/",
                body=body or None,
                headers={"Content-Type": headers.get("Content-Type", "application/json")},
            )
            response = connection.getresponse()
            reply = Reply(
                response.status, response.read(), response.getheader("Content-Type", "application/json")
            )
        except OSError:
            reply = Reply(503, b"upstream connect error or disconnect/reset before headers", "text/plain")
        finally:
            connection.close()
        record["status"] = reply.code
        with self.lock:
            self.proxied.append(record)
        return reply
