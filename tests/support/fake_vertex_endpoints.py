"""``FakeVertexAi``: a FAKE of the Vertex AI REST API's model registry, endpoints and online prediction.

No Vertex AI exists here, so the vertex-endpoint deploy tests run the REAL google-cloud-aiplatform
clients (``aiplatform_v1`` GAPIC clients, REST transport) against this loopback server. It records
every request and answers as ``{region}-aiplatform.googleapis.com/v1`` does:

- request bodies are parsed STRICTLY into the API's own request messages (``UploadModelRequest``,
  ``DeployModelRequest``, ``UndeployModelRequest``, ``Endpoint``, ``PredictRequest``: the protos the
  REST discovery document is generated from); an unknown field or a wrong enum value is a 400
  ``INVALID_ARGUMENT``, in Google's error JSON;
- ``models:upload``, ``endpoints`` create, ``:deployModel`` and ``:undeployModel`` are long-running
  operations: answered ``done: false`` and completed at the client's first ``GET`` of the operation
  (the REST operations client of aiplatform_v1 polls ``/ui/{name}``, the first of its URL patterns);
- ``models:upload`` with ``parentModel`` adds a version (``versionId`` 2, 3...) to that model, without
  one creates the model with ``modelId``; ``versionAliases`` must be unique within the model;
- ``:deployModel`` needs ``dedicatedResources`` for a custom container; it starts the model's
  "serving node": the REAL predictor process the test registered for the model's ``artifactUri`` in
  ``backends``, which must answer the container's ``healthRoute`` (else the operation fails with
  Vertex's "Model server never became ready"); ``trafficSplit`` must add up to 100 (key "0" is the
  model being deployed);
- ``PATCH`` endpoints with ``updateMask=trafficSplit`` (the same rule), ``:undeployModel`` refuses to
  remove a model that still has traffic;
- ``:predict`` picks a deployed model by the traffic split (deterministic weighted round robin),
  POSTs ``{"instances": ...}`` to its backend at the container's ``predictRoute`` and answers
  ``{"predictions", "deployedModelId", "model", "modelVersionId", "modelDisplayName"}``; a backend
  failure is a 500 ``INTERNAL`` naming the deployed model.

Every call needs a live Bearer token from ``FakeGoogleCloud`` (401 ``UNAUTHENTICATED`` otherwise).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import requests
from fake_google_cloud import Answer, FakeGoogleCloud, _serve, google_error

_PARENT = r"projects/[^/]+/locations/[^/]+"
ROUTES = [
    ("POST", re.compile(rf"^/v1/(?P<parent>{_PARENT})/models:upload$"), "upload"),
    ("GET", re.compile(rf"^/v1/(?P<name>{_PARENT}/models/[^/:]+)$"), "get_model"),
    ("POST", re.compile(rf"^/v1/(?P<parent>{_PARENT})/endpoints$"), "create_endpoint"),
    ("GET", re.compile(rf"^/v1/(?P<name>{_PARENT}/endpoints/[^/:]+)$"), "get_endpoint"),
    ("PATCH", re.compile(rf"^/v1/(?P<name>{_PARENT}/endpoints/[^/:]+)$"), "update_endpoint"),
    ("POST", re.compile(rf"^/v1/(?P<name>{_PARENT}/endpoints/[^/:]+):deployModel$"), "deploy"),
    ("POST", re.compile(rf"^/v1/(?P<name>{_PARENT}/endpoints/[^/:]+):undeployModel$"), "undeploy"),
    ("POST", re.compile(rf"^/v1/(?P<name>{_PARENT}/endpoints/[^/:]+):predict$"), "predict"),
    (
        "GET",
        re.compile(rf"^/(?:v1|ui)/(?P<name>{_PARENT}/(?:models|endpoints)/[^/]+/operations/[^/]+)$"),
        "get_operation",
    ),
]
_TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."


def _route(method: str, path: str) -> tuple[str, re.Match[str] | None]:
    for route_method, pattern, kind in ROUTES:
        match = pattern.match(path)
        if match and method == route_method:
            return kind, match
    return "unknown", None


def _strict(message_type: Any, body: Any) -> str | None:
    """Why ``body`` is not a valid JSON ``message_type`` (unknown field, wrong type/enum), or None."""
    from google.protobuf import json_format

    try:
        json_format.ParseDict(body, message_type.pb(message_type()), ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        return str(exc)
    return None


class FakeVertexAi:
    """See the module docstring. ``url`` is the api_endpoint; ``backends``: artifactUri -> predictor URL."""

    def __init__(self, google: FakeGoogleCloud) -> None:
        self.google = google
        self.lock = threading.RLock()
        self.requests: list[dict[str, Any]] = []
        self.models: dict[str, list[dict[str, Any]]] = {}  # model name -> its versions
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.backends: dict[str, str] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.predicted: list[dict[str, Any]] = []
        self._counter = 0
        self._rr = 0
        self.httpd, self._thread = _serve(
            ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler), self.answer
        )
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FakeVertexAi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.models.clear()
            self.endpoints.clear()
            self.backends.clear()
            self.operations.clear()
            self.predicted.clear()

    def calls(self, kind: str) -> list[dict[str, Any]]:
        """The recorded requests of one route kind (``upload``, ``deploy``, ``predict``...)."""
        return [r for r in self.requests if r["kind"] == kind]

    def traffic(self, endpoint: str) -> dict[str, int]:
        with self.lock:
            return dict(self.endpoints[endpoint].get("trafficSplit") or {})

    def deployed(self, endpoint: str) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.endpoints[endpoint].get("deployedModels") or [])

    # --- dispatch ------------------------------------------------------------------------------------

    def answer(self, method: str, raw_path: str, body: bytes, headers: Any) -> Answer:
        parsed = urlparse(raw_path)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        token = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        kind, match = _route(method, unquote(parsed.path))  # the client sends "@" as %40
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = None
        with self.lock:
            self.requests.append(
                {"kind": kind, "method": method, "path": raw_path, "query": query, "body": data}
            )
        if not self.google.is_live(token):
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        if match is None:
            return google_error(
                404, "NOT_FOUND", f"The requested URL {parsed.path} was not found on this server."
            )
        if data is None:
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        handler = getattr(self, f"_{kind}")
        with self.lock:
            return handler(match, query, data)

    # --- long-running operations --------------------------------------------------------------------

    def _operation(
        self, resource: str, metadata_type: str, response: dict[str, Any] | None, error: Any = None
    ) -> Answer:
        """A long-running operation: ``done: false`` now, its result at the first GET."""
        self._counter += 1
        name = f"{resource}/operations/{1000 + self._counter}"
        final: dict[str, Any] = {"name": name, "done": True, "metadata": {"@type": _TYPE + metadata_type}}
        if error is not None:
            final["error"] = error
        else:
            final["response"] = response
        self.operations[name] = final
        return Answer(200, {"name": name, "done": False, "metadata": {"@type": _TYPE + metadata_type}})

    def _get_operation(self, match: re.Match[str], query: dict, data: Any) -> Answer:
        final = self.operations.get(match["name"])
        if final is None:
            return google_error(404, "NOT_FOUND", f"Operation {match['name']} not found.")
        return Answer(200, final)

    # --- models ---------------------------------------------------------------------------------------

    def _upload(self, match: re.Match[str], query: dict, data: dict[str, Any]) -> Answer:
        from google.cloud.aiplatform_v1 import UploadModelRequest

        problem = _strict(UploadModelRequest, data)
        if problem:
            return google_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {problem}")
        model = data.get("model") or {}
        container = model.get("containerSpec") or {}
        if not container.get("imageUri"):
            return google_error(400, "INVALID_ARGUMENT", "Model.container_spec.image_uri is required.")
        artifact = model.get("artifactUri", "")
        if artifact and not artifact.startswith("gs://"):
            return google_error(
                400,
                "INVALID_ARGUMENT",
                f"Model artifact_uri {artifact} must be a Cloud Storage directory (gs://).",
            )
        parent_model = data.get("parentModel")
        if parent_model:
            if parent_model not in self.models:
                return google_error(404, "NOT_FOUND", f"Parent model {parent_model} not found.")
            name, versions = parent_model, self.models[parent_model]
        else:
            model_id = data.get("modelId") or str(4000 + len(self.models))
            name = f"{match['parent']}/models/{model_id}"
            if name in self.models:
                return google_error(409, "ALREADY_EXISTS", f"Model {name} already exists.")
            versions = self.models[name] = []
        aliases = list(model.get("versionAliases") or [])
        taken = {a for v in versions for a in v.get("versionAliases", [])}
        if set(aliases) & taken:
            return google_error(
                400,
                "INVALID_ARGUMENT",
                f"Version aliases {sorted(set(aliases) & taken)} already exist in {name}.",
            )
        version_id = str(len(versions) + 1)
        if not versions:
            aliases = ["default", *aliases]
        stored = {**copy.deepcopy(model), "name": name, "versionId": version_id, "versionAliases": aliases}
        versions.append(stored)
        return self._operation(
            name,
            "UploadModelOperationMetadata",
            {"@type": _TYPE + "UploadModelResponse", "model": name, "modelVersionId": version_id},
        )

    def _version(self, name: str) -> dict[str, Any] | None:
        base, _, ref = name.partition("@")
        versions = self.models.get(base)
        if not versions:
            return None
        ref = ref or "default"
        for version in versions:
            if version["versionId"] == ref or ref in version.get("versionAliases", []):
                return version
        return None

    def _get_model(self, match: re.Match[str], query: dict, data: Any) -> Answer:
        version = self._version(match["name"])
        if version is None:
            return google_error(404, "NOT_FOUND", f'Model "{match["name"]}" not found.')
        return Answer(200, version)

    # --- endpoints -------------------------------------------------------------------------------------

    def _create_endpoint(self, match: re.Match[str], query: dict, data: dict[str, Any]) -> Answer:
        from google.cloud.aiplatform_v1 import Endpoint

        problem = _strict(Endpoint, data)
        if problem:
            return google_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {problem}")
        if not data.get("displayName"):
            return google_error(400, "INVALID_ARGUMENT", "Endpoint.display_name is required.")
        endpoint_id = query.get("endpointId") or str(7000 + len(self.endpoints))
        name = f"{match['parent']}/endpoints/{endpoint_id}"
        if name in self.endpoints:
            return google_error(409, "ALREADY_EXISTS", f"Endpoint {name} already exists.")
        self.endpoints[name] = {
            "name": name,
            "displayName": data["displayName"],
            "deployedModels": [],
            "trafficSplit": {},
        }
        return self._operation(
            name, "CreateEndpointOperationMetadata", {"@type": _TYPE + "Endpoint", **self.endpoints[name]}
        )

    def _get_endpoint(self, match: re.Match[str], query: dict, data: Any) -> Answer:
        endpoint = self.endpoints.get(match["name"])
        if endpoint is None:
            return google_error(404, "NOT_FOUND", f'Endpoint "{match["name"]}" not found.')
        return Answer(200, endpoint)

    @staticmethod
    def _split_problem(split: dict[str, Any], ids: set[str]) -> str | None:
        if sum(int(v) for v in split.values()) != 100:
            return "Sum of all traffic within traffic split needs to be 100."
        unknown = set(split) - ids
        if unknown:
            return f"Deployed model ids {sorted(unknown)} in traffic split do not exist in the endpoint."
        return None

    def _update_endpoint(self, match: re.Match[str], query: dict, data: dict[str, Any]) -> Answer:
        from google.cloud.aiplatform_v1 import Endpoint

        endpoint = self.endpoints.get(match["name"])
        if endpoint is None:
            return google_error(404, "NOT_FOUND", f'Endpoint "{match["name"]}" not found.')
        problem = _strict(Endpoint, data)
        if problem:
            return google_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {problem}")
        mask = query.get("updateMask", "")
        if mask not in ("trafficSplit", "traffic_split"):
            return google_error(400, "INVALID_ARGUMENT", f"this fake updates only trafficSplit, not {mask!r}")
        split = {k: int(v) for k, v in (data.get("trafficSplit") or {}).items()}
        problem = self._split_problem(split, {m["id"] for m in endpoint["deployedModels"]})
        if problem:
            return google_error(400, "INVALID_ARGUMENT", problem)
        endpoint["trafficSplit"] = {k: v for k, v in split.items() if v}
        return Answer(200, endpoint)

    def _deploy(self, match: re.Match[str], query: dict, data: dict[str, Any]) -> Answer:
        from google.cloud.aiplatform_v1 import DeployModelRequest

        endpoint = self.endpoints.get(match["name"])
        if endpoint is None:
            return google_error(404, "NOT_FOUND", f'Endpoint "{match["name"]}" not found.')
        problem = _strict(DeployModelRequest, data)
        if problem:
            return google_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {problem}")
        deployed = data.get("deployedModel") or {}
        version = self._version(deployed.get("model", ""))
        if version is None:
            return google_error(404, "NOT_FOUND", f"Model {deployed.get('model')} not found.")
        resources = deployed.get("dedicatedResources") or {}
        if not (resources.get("machineSpec") or {}).get("machineType"):
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "Model with a custom container must be deployed with "
                "dedicated_resources.machine_spec.machine_type.",
            )
        if int(resources.get("minReplicaCount") or 0) < 1:
            return google_error(
                400, "INVALID_ARGUMENT", "dedicated_resources.min_replica_count must be >= 1."
            )
        self._counter += 1
        deployed_id = str(900000 + self._counter)
        split = {
            (deployed_id if k == "0" else k): int(v)
            for k, v in (data.get("trafficSplit") or {"0": 100}).items()
        }
        problem = self._split_problem(split, {m["id"] for m in endpoint["deployedModels"]} | {deployed_id})
        if problem:
            return google_error(400, "INVALID_ARGUMENT", problem)
        if not self._healthy(version):
            return self._operation(
                match["name"],
                "DeployModelOperationMetadata",
                None,
                {
                    "code": 3,
                    "message": "Model server never became ready. Please validate that your model file or "
                    "container configuration are valid.",
                },
            )
        record = {
            **copy.deepcopy(deployed),
            "id": deployed_id,
            "model": f"{version['name']}@{version['versionId']}",
            "modelVersionId": version["versionId"],
        }
        endpoint["deployedModels"].append(record)
        endpoint["trafficSplit"] = {k: v for k, v in split.items() if v}
        return self._operation(
            match["name"],
            "DeployModelOperationMetadata",
            {"@type": _TYPE + "DeployModelResponse", "deployedModel": record},
        )

    def _healthy(self, version: dict[str, Any]) -> bool:
        backend = self.backends.get(version.get("artifactUri", ""))
        route = (version.get("containerSpec") or {}).get("healthRoute") or "/"
        if backend is None:
            return False
        try:
            return requests.get(backend + route, timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def _undeploy(self, match: re.Match[str], query: dict, data: dict[str, Any]) -> Answer:
        from google.cloud.aiplatform_v1 import UndeployModelRequest

        endpoint = self.endpoints.get(match["name"])
        if endpoint is None:
            return google_error(404, "NOT_FOUND", f'Endpoint "{match["name"]}" not found.')
        problem = _strict(UndeployModelRequest, data)
        if problem:
            return google_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {problem}")
        target = data.get("deployedModelId")
        ids = {m["id"] for m in endpoint["deployedModels"]}
        if target not in ids:
            return google_error(404, "NOT_FOUND", f"Deployed model {target} not found in {match['name']}.")
        split = {k: int(v) for k, v in (data.get("trafficSplit") or endpoint["trafficSplit"]).items()}
        remaining = ids - {target}
        if remaining and split.get(target):
            return google_error(
                400,
                "FAILED_PRECONDITION",
                f"Model {target} has {split[target]}% of the traffic; move it to other models "
                "before undeploying.",
            )
        split = {k: v for k, v in split.items() if k != target and v}
        if remaining:
            problem = self._split_problem(split, remaining)
            if problem:
                return google_error(400, "INVALID_ARGUMENT", problem)
        endpoint["deployedModels"] = [m for m in endpoint["deployedModels"] if m["id"] != target]
        endpoint["trafficSplit"] = split
        return self._operation(
            match["name"], "UndeployModelOperationMetadata", {"@type": _TYPE + "UndeployModelResponse"}
        )

    # --- prediction ------------------------------------------------------------------------------------

    def _pick(self, endpoint: dict[str, Any]) -> dict[str, Any] | None:
        weighted = [mid for mid, share in sorted(endpoint["trafficSplit"].items()) for _ in range(int(share))]
        if not weighted:
            return None
        self._rr += 1
        chosen = weighted[(self._rr * 37) % len(weighted)]
        return next(m for m in endpoint["deployedModels"] if m["id"] == chosen)

    def _predict(self, match: re.Match[str], query: dict, data: dict[str, Any]) -> Answer:
        from google.cloud.aiplatform_v1 import PredictRequest

        endpoint = self.endpoints.get(match["name"])
        if endpoint is None:
            return google_error(404, "NOT_FOUND", f'Endpoint "{match["name"]}" not found.')
        problem = _strict(PredictRequest, data)
        if problem:
            return google_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {problem}")
        deployed = self._pick(endpoint)
        if deployed is None:
            return google_error(
                400, "FAILED_PRECONDITION", f"Endpoint {match['name']} has no deployed model with traffic."
            )
        version = self._version(deployed["model"])
        backend = self.backends.get(version.get("artifactUri", ""), "")
        route = (version.get("containerSpec") or {}).get("predictRoute") or "/"
        record = {"deployedModelId": deployed["id"], "route": route}
        try:
            reply = requests.post(backend + route, json={"instances": data.get("instances", [])}, timeout=30)
            record["status"] = reply.status_code
            body = reply.json() if reply.status_code == 200 else None
        except (requests.RequestException, ValueError) as exc:
            record["status"], body = 503, None
            reply = exc  # type: ignore[assignment]
        self.predicted.append(record)
        if body is None or "predictions" not in body:
            return google_error(
                500,
                "INTERNAL",
                f"Prediction failed on deployed model {deployed['id']}: "
                f"{str(getattr(reply, 'text', reply))[:300]}",
            )
        return Answer(
            200,
            {
                "predictions": body["predictions"],
                "deployedModelId": deployed["id"],
                "model": version["name"],
                "modelVersionId": version["versionId"],
                "modelDisplayName": version.get("displayName", ""),
            },
        )
