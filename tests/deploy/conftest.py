"""``FakeKubernetesApiServer``: a stand-in for the Kubernetes API server with KServe installed.

No cluster exists here, so the deploy tests drive the REAL ``kubernetes`` client against this small
HTTP server on loopback. It is plainly a fake, and it does only what the deploy step relies on:

- API discovery of ``serving.kserve.io/v1beta1`` (404 when ``crd_installed`` is false, as a cluster
  without KServe answers);
- GET / POST / PATCH (JSON merge patch only, optimistic ``resourceVersion``) of InferenceServices,
  with ``metadata.generation`` bumped on every spec change; 403 Status bodies for verbs in
  ``forbidden`` (worded like the real RBAC denial); specs validated against the real CRD schema
  when ``../shared/crds`` is present;
- a "controller" thread that moves the status the way KServe does, ``reconcile_delay`` seconds
  after each change: ``observedGeneration``, the ``Ready`` condition, revisions and their traffic
  split (Knative: ``canaryTrafficPercent`` against the last revision rolled out at 100 %;
  Standard: ``spec.canary`` and ``canaryStatuses``), ``status.url``;
- an "ingress" under ``/ingress/<ns>/<name>`` that forwards requests, by the traffic split, to the
  REAL predictor process serving each revision's ``storageUri`` (``backends``); a revision whose
  storageUri has no backend never becomes ready. Every forwarded request is recorded.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
CRD_PATH = (Path(__file__).resolve().parents[2].parent / "shared" / "crds"
            / "serving.kserve.io_inferenceservices.yaml")
_OBJECT = re.compile(rf"^/apis/{GROUP}/{VERSION}/namespaces/(?P<ns>[^/]+)/{PLURAL}(?:/(?P<name>[^/]+))?$")
_INGRESS = re.compile(r"^/ingress/(?P<ns>[^/]+)/(?P<name>[^/]+)(?:/_tag/(?P<tag>[^/]+))?(?P<rest>/.*)?$")
KNATIVE_MODES = ("Serverless", "Knative")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


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
class Stored:
    """One InferenceService and the fake controller's bookkeeping."""

    obj: dict[str, Any]
    revisions: list[Revision] = field(default_factory=list)
    rolled_out: str | None = None  # Knative: the last revision that had 100 %
    changed_at: float = 0.0
    split: dict[str, int] = field(default_factory=dict)
    rr_counter: int = 0


class FakeKubernetesApiServer:
    """See the module docstring. Use as a context manager; ``host`` goes into the client config."""

    def __init__(self, reconcile_delay: float = 0.2) -> None:
        self.reconcile_delay = reconcile_delay
        self.crd_installed = True
        self.forbidden: set[str] = set()
        self.backends: dict[str, str] = {}
        self.store: dict[tuple[str, str], Stored] = {}
        self.requests: list[dict[str, Any]] = []
        self.proxied: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.host = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._threads = [threading.Thread(target=self.httpd.serve_forever, daemon=True),
                         threading.Thread(target=self._controller, daemon=True)]

    def __enter__(self) -> FakeKubernetesApiServer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def reset(self) -> None:
        with self.lock:
            self.crd_installed, self.forbidden = True, set()
            self.backends.clear()
            self.store.clear()
            self.requests.clear()
            self.proxied.clear()

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            stored = self.store.get((namespace, name))
            return copy.deepcopy(stored.obj) if stored else None

    def revision_for(self, namespace: str, name: str, revision: str) -> Revision:
        with self.lock:
            return next(r for r in self.store[(namespace, name)].revisions if r.name == revision)

    # --- the "controller" ----------------------------------------------------------------------

    def _controller(self) -> None:
        while not self._stop.wait(0.05):
            with self.lock:
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
        status: dict[str, Any] = {"observedGeneration": obj["metadata"]["generation"], "url": base,
                                  "address": {"url": f"http://{name}.{namespace}.svc.cluster.local"},
                                  "deploymentMode": mode}
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
            traffic = [{"revisionName": revision, "percent": share, "latestRevision": revision == latest.name,
                        "tag": "latest" if revision == latest.name else "prev",
                        "url": f"{base}/_tag/{'latest' if revision == latest.name else 'prev'}"}
                       for revision, share in split.items()]
            status["components"] = {"predictor": {
                "traffic": traffic, "latestCreatedRevision": latest.name,
                **({"latestReadyRevision": latest.name} if self._ready(latest) else {}),
                **({"previousRolledoutRevision": stable.name} if stable and stable is not latest else {})}}
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
                canary_statuses.append({"name": canary.name, "ready": self._ready(canary),
                                        "trafficPercent": share})
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

    # --- the HTTP API --------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                return

            def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                fake._dispatch(self, "GET")

            def do_POST(self) -> None:
                fake._dispatch(self, "POST")

            def do_PATCH(self) -> None:
                fake._dispatch(self, "PATCH")

            def do_PUT(self) -> None:
                fake._dispatch(self, "PUT")

        return Handler

    @staticmethod
    def _status(code: int, reason: str, message: str, name: str | None = None) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                "reason": reason, "details": {"name": name, "group": GROUP, "kind": PLURAL}, "code": code}

    def _dispatch(self, handler: Any, method: str) -> None:
        path = urlparse(handler.path).path
        ingress = _INGRESS.match(path)
        if ingress:
            self._proxy(handler, method, ingress)
            return
        body = handler._body()
        with self.lock:
            self.requests.append({"method": method, "path": handler.path,
                                  "content_type": handler.headers.get("Content-Type"),
                                  "body": json.loads(body) if body else None})
        if path == f"/apis/{GROUP}/{VERSION}" and method == "GET":
            if not self.crd_installed:
                handler._send(404, b"404 page not found\n", "text/plain")
                return
            handler._send(200, {"kind": "APIResourceList", "groupVersion": f"{GROUP}/{VERSION}",
                                "resources": [{"name": PLURAL, "namespaced": True, "kind": "InferenceService",
                                               "verbs": ["create", "get", "list", "patch", "watch"]}]})
            return
        match = _OBJECT.match(path)
        if match is None or not self.crd_installed:
            handler._send(404, b"404 page not found\n", "text/plain")
            return
        namespace, name = match["ns"], match["name"]
        verb = {"GET": "get" if name else "list", "POST": "create", "PATCH": "patch", "PUT": "update"}[method]
        if verb in self.forbidden:
            subject = "system:serviceaccount:kubeflow:pipeline-runner"
            handler._send(403, self._status(
                403, "Forbidden", f'{PLURAL}.{GROUP} "{name or ""}" is forbidden: User "{subject}" cannot '
                f'{verb} resource "{PLURAL}" in API group "{GROUP}" in the namespace "{namespace}"', name))
            return
        with self.lock:
            code, answer = getattr(self, f"_{verb}")(namespace, name, json.loads(body) if body else None,
                                                     handler.headers.get("Content-Type", ""))
        handler._send(code, answer)

    def _get(self, namespace: str, name: str, body: Any, content_type: str) -> tuple[int, Any]:
        stored = self.store.get((namespace, name))
        if stored is None:
            return 404, self._status(404, "NotFound", f'{PLURAL}.{GROUP} "{name}" not found', name)
        return 200, stored.obj

    def _invalid(self, name: str, spec: dict[str, Any]) -> tuple[int, Any] | None:
        errors = crd_spec_errors(spec)
        if errors:
            message = f"InferenceService {name!r} is invalid: {errors[:3]}"
            return 422, self._status(422, "Invalid", message, name)
        return None

    def _create(self, namespace: str, name: str | None, body: Any, content_type: str) -> tuple[int, Any]:
        name = body["metadata"]["name"]
        if (namespace, name) in self.store:
            return 409, self._status(409, "AlreadyExists", f'{PLURAL}.{GROUP} "{name}" already exists', name)
        invalid = self._invalid(name, body.get("spec") or {})
        if invalid:
            return invalid
        obj = copy.deepcopy(body)
        obj["metadata"].update({"namespace": namespace, "generation": 1, "resourceVersion": "1",
                                "uid": f"uid-{name}"})
        obj["status"] = {}
        self.store[(namespace, name)] = Stored(obj, changed_at=time.monotonic())
        return 201, obj

    def _patch(self, namespace: str, name: str, body: Any, content_type: str) -> tuple[int, Any]:
        if content_type.split(";")[0] != "application/merge-patch+json":
            return 415, self._status(415, "UnsupportedMediaType",
                                     f"this fake takes merge patches, not {content_type}")
        stored = self.store.get((namespace, name))
        if stored is None:
            return 404, self._status(404, "NotFound", f'{PLURAL}.{GROUP} "{name}" not found', name)
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != stored.obj["metadata"]["resourceVersion"]:
            return 409, self._status(409, "Conflict", "the object has been modified; please apply your "
                                     "changes to the latest version and try again", name)
        patched = merge_patch(stored.obj, body)
        invalid = self._invalid(name, patched.get("spec") or {})
        if invalid:
            return invalid
        patched["status"] = stored.obj.get("status") or {}
        metadata = patched["metadata"]
        metadata["resourceVersion"] = str(int(stored.obj["metadata"]["resourceVersion"]) + 1)
        metadata["generation"] = stored.obj["metadata"]["generation"]
        if patched.get("spec") != stored.obj.get("spec"):
            metadata["generation"] += 1
            stored.changed_at = time.monotonic()
        stored.obj = patched
        return 200, patched

    def _list(self, namespace: str, name: None, body: Any, content_type: str) -> tuple[int, Any]:
        items = [s.obj for (ns, _), s in self.store.items() if ns == namespace]
        return 200, {"kind": "InferenceServiceList", "items": items}

    def _update(self, namespace: str, name: str, body: Any, content_type: str) -> tuple[int, Any]:
        return 405, self._status(405, "MethodNotAllowed", "the deploy step must not PUT (it patches)")

    # --- the "ingress" -------------------------------------------------------------------------

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

    def _proxy(self, handler: Any, method: str, match: re.Match) -> None:
        body = handler._body()
        with self.lock:
            stored = self.store.get((match["ns"], match["name"]))
            revision_name = self._pick(stored, match["tag"]) if stored else None
            revision = (next(r for r in stored.revisions if r.name == revision_name)
                        if stored and revision_name else None)
            backend = self.backends.get(revision.storage_uri) if revision else None
        record = {"revision": revision_name, "path": match["rest"] or "/", "method": method}
        if backend is None:
            record["status"] = 503
            self.proxied.append(record)
            handler._send(503, b"no healthy upstream", "text/plain")
            return
        parsed = urlparse(backend)
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        try:
            content_type = handler.headers.get("Content-Type", "application/json")
            connection.request(method, match["rest"] or "/", body=body or None,
                               headers={"Content-Type": content_type})
            response = connection.getresponse()
            data, code = response.read(), response.status
            content_type = response.getheader("Content-Type", "application/json")
        except OSError:
            data, code = b"upstream connect error or disconnect/reset before headers", 503
            content_type = "text/plain"
        finally:
            connection.close()
        record["status"] = code
        with self.lock:
            self.proxied.append(record)
        handler._send(code, data, content_type)


@pytest.fixture(scope="module")
def fake_kubernetes() -> Iterator[FakeKubernetesApiServer]:
    """One fake API server per test module (reset before each test by the tests' own fixture)."""
    with FakeKubernetesApiServer() as fake:
        yield fake
