"""``FakeKubernetesApiServer``: a FAKE standing in for the Kubernetes API server.

No Kubernetes cluster (and so no API server) exists here, so the deploy and training tests drive
the REAL ``kubernetes`` client against this small HTTP server on loopback. It is plainly a fake and
does only what those steps rely on, with one HTTP server for every resource:

- API discovery of each served group/version (404 while a resource's CRD is not ``installed``, as
  a cluster without it answers), and ``404 page not found`` off its routes;
- create / get / list / patch / delete of namespaced custom resources over an in-memory store
  (``fake_kubernetes_resource``: JSON merge patch with optimistic ``resourceVersion``,
  ``metadata.generation`` bumped on every spec change, Status bodies for 404 / 405 / 409 / 415 / 422);
- 403 Status bodies, worded like the real RBAC denial, for the verbs in ``forbidden``;
- every API request recorded in ``requests`` (method, path, content type, JSON body);
- ``after_patch``: called with each applied merge patch before it is answered (a test can kill the
  deploying process right there, as a node failure would);
- a controller thread that lets each resource move its objects' status;
- the resources: InferenceServices with KServe's controller and an ingress to real predictors
  (``fake_kserve``), PyTorchJobs with the training operator's behaviour and pod logs
  (``fake_training_operator``). The attributes the tests use of each (``backends``, ``store``,
  ``proxied``, ``crd_installed``, ``jobs``, ``mode``, ``script``...) are reachable on the server.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fake_kserve import InferenceServices
from fake_kubernetes_resource import PAGE_NOT_FOUND, Reply, Resource
from fake_training_operator import PyTorchJobs

_API = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)"
    r"(?:/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?)?$"
)
_VERBS = {
    ("GET", True): "get",
    ("GET", False): "list",
    ("POST", False): "create",
    ("PATCH", True): "patch",
    ("PUT", True): "update",
    ("DELETE", True): "delete",
}
SUBJECT = "system:serviceaccount:kubeflow:pipeline-runner"  # who the fake says was denied


def _forwarded(resource: str, attribute: str) -> property:
    """A server attribute that is one of its resources' own (the tests read and set it on the server)."""
    return property(
        lambda self: getattr(getattr(self, resource), attribute),
        lambda self, value: setattr(getattr(self, resource), attribute, value),
    )


class FakeKubernetesApiServer:
    """See the module docstring. Use as a context manager (or ``start``/``stop``); ``url`` is the host."""

    crd_installed = _forwarded("inference_services", "installed")
    backends = _forwarded("inference_services", "backends")
    store = _forwarded("inference_services", "store")
    proxied = _forwarded("inference_services", "proxied")
    reconcile_delay = _forwarded("inference_services", "reconcile_delay")
    get = _forwarded("inference_services", "snapshot")
    revision_for = _forwarded("inference_services", "revision_for")
    jobs = _forwarded("pytorchjobs", "store")
    mode = _forwarded("pytorchjobs", "mode")
    script = _forwarded("pytorchjobs", "script")

    def __init__(self, reconcile_delay: float = 0.2, log_dir: Path | None = None) -> None:
        """``log_dir`` keeps the pod logs of PyTorchJob replicas (a temporary folder when None)."""
        self.lock = threading.RLock()
        self.forbidden: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        self.after_patch: Callable[[dict[str, Any]], None] | None = None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.inference_services = InferenceServices(self.lock, self.url, reconcile_delay)
        self.pytorchjobs = PyTorchJobs(self.lock, log_dir)
        self.resources: tuple[Resource, ...] = (self.inference_services, self.pytorchjobs)
        self._routes = [route for resource in self.resources for route in resource.routes()]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self.httpd.serve_forever, daemon=True),
            threading.Thread(target=self._controller, daemon=True),
        ]

    @property
    def host(self) -> str:
        return self.url

    def start(self) -> FakeKubernetesApiServer:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        with self.lock:
            for resource in self.resources:
                resource.close()

    def __enter__(self) -> FakeKubernetesApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every object, request and scenario setting (each test starts from nothing)."""
        with self.lock:
            self.forbidden = set()
            self.requests.clear()
            self.after_patch = None
            for resource in self.resources:
                resource.reset()

    def api_client(self) -> Any:
        """A real ``kubernetes`` client configured for this server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def created_bodies(self) -> list[dict[str, Any]]:
        """The bodies of every POST, as the client sent them."""
        return [r["body"] for r in self.requests if r["method"] == "POST" and r["body"]]

    def deleted(self) -> list[str]:
        """The names of the objects DELETE was asked for, in order."""
        return [urlparse(r["path"]).path.rsplit("/", 1)[-1] for r in self.requests if r["method"] == "DELETE"]

    def _controller(self) -> None:
        while not self._stop.wait(0.05):
            with self.lock:
                for resource in self.resources:
                    resource.reconcile()

    # --- the HTTP API ------------------------------------------------------------------------------

    def answer(self, method: str, raw_path: str, body: bytes, headers: Any) -> Reply:
        """The reply to one HTTP request (the handler only reads and writes the bytes)."""
        path = urlparse(raw_path).path
        for route in self._routes:
            match = route.pattern.match(path)
            if match:
                if route.recorded:
                    self._record(method, raw_path, body, headers)
                return route.answer(method, match, body, headers)
        self._record(method, raw_path, body, headers)
        match = _API.match(path)
        if match is None:
            return PAGE_NOT_FOUND
        served = [r for r in self.resources if r.installed and (r.group, r.version) == match.group(1, 2)]
        if match["plural"] is None:
            return self._discovery(served) if method == "GET" and served else PAGE_NOT_FOUND
        resource = next((r for r in served if r.plural == match["plural"]), None)
        if resource is None:
            return PAGE_NOT_FOUND
        namespace, name = match["ns"], match["name"]
        verb = _VERBS.get((method, name is not None))
        if verb is None:
            return resource.failure(405, "MethodNotAllowed", f"{method} is not served on {path}", name)
        if verb in self.forbidden:
            return resource.failure(
                403,
                "Forbidden",
                f'{resource.plural}.{resource.group} "{name or ""}" is forbidden: User '
                f'"{SUBJECT}" cannot {verb} resource "{resource.plural}" in API group "{resource.group}" '
                f'in the namespace "{namespace}"',
                name,
            )
        with self.lock:
            reply = resource.answer(
                verb, namespace, name, json.loads(body) if body else None, headers.get("Content-Type", "")
            )
            if verb == "patch" and reply.code == 200 and self.after_patch is not None:
                self.after_patch(json.loads(body))
            # Encoded under the lock: the controller thread may move the object right after.
            return Reply(reply.code, json.dumps(reply.body).encode(), headers=reply.headers)

    def _record(self, method: str, path: str, body: bytes, headers: Any) -> None:
        with self.lock:
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "content_type": headers.get("Content-Type"),
                    "body": json.loads(body) if body else None,
                }
            )

    @staticmethod
    def _discovery(resources: list[Resource]) -> Reply:
        return Reply(
            200,
            {
                "kind": "APIResourceList",
                "groupVersion": resources[0].api_version,
                "resources": [
                    {"name": r.plural, "namespaced": True, "kind": r.kind, "verbs": [*r.verbs, "watch"]}
                    for r in resources
                ],
            },
        )


def _handler_class(fake: FakeKubernetesApiServer) -> type[BaseHTTPRequestHandler]:
    """One request handler for every route: read the request, write ``fake.answer``'s reply."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            return

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            reply = fake.answer(self.command, self.path, body, self.headers)
            data = (
                reply.body
                if isinstance(reply.body, bytes)
                else (reply.body.encode() if isinstance(reply.body, str) else json.dumps(reply.body).encode())
            )
            self.send_response(reply.code)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
            for header, value in reply.headers.items():
                self.send_header(header, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return Handler
