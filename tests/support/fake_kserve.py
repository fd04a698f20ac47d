"""InferenceServices in the FAKE Kubernetes API server (``fake_kubernetes_api``): KServe's part.

No cluster exists here. This FAKE does what the deploy step relies on from KServe:

- specs validated against the real CRD schema when ``../shared/crds`` is present (422 otherwise);
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


def crd_spec_errors(spec: dict[str, Any]) -> list[str]:
    """Errors of ``spec`` against the real InferenceService CRD (none when the CRD is absent)."""
    global _SCHEMA_VALIDATOR
    if not CRD_PATH.is_file():
        return []
    if _SCHEMA_VALIDATOR is None:
        import yaml
        from jsonschema import Draft7Validator

        crd = yaml.load(CRD_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        schema = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)["schema"]["openAPIV3Schema"]
        _SCHEMA_VALIDATOR = Draft7Validator(schema["properties"]["spec"])
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in _SCHEMA_VALIDATOR.iter_errors(spec)]


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

    def reset(self) -> None:
        super().reset()
        self.backends.clear()
        self.proxied.clear()

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
