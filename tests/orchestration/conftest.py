"""Fakes of the services the orchestration commands talk to, and fixtures that run them.

No KFP API server or Vertex AI exists here, so two small HTTP servers stand in for them:
``FakeKfpApiServer`` implements the KFP v2beta1 REST endpoints ``kfp.Client`` calls for upload,
runs and recurring runs; ``FakeVertexApiServer`` the Vertex AI v1 REST endpoints the aiplatform
SDK calls for PipelineJobs and Schedules (plus the two Cloud Storage bucket endpoints it needs).
Both listen on 127.0.0.1 on a free port, record every request, and are stopped after each test.
The real clients talk to them; tests assert on the recorded requests.

Both are as strict as the servers they stand for: every JSON body a client creates a resource with
is checked against the real API's published schema (``tests/support/api_schemas``: the KFP v2beta1
models of the installed ``kfp_server_api`` package, generated from the API server's swagger; the
Vertex AI v1 discovery document) and refused as the real server refuses it (KFP: 400 with a
``google.rpc.Status``; Vertex: 400 ``INVALID_ARGUMENT``); ``rejections`` records each refusal.
Without ``kfp_server_api`` or the stored discovery excerpt the fixtures skip. The KFP fake returns a
version's ``pipeline_spec`` as the API server's ``YamlStringToPipelineSpecStruct`` does: the bare
pipeline spec, or ``{"pipeline_spec": …, "platform_spec": …}`` when the upload carried a
kfp-kubernetes platform spec.
"""

from __future__ import annotations

import email.parser
import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml
from api_schemas import kfp_definitions, kfp_errors, vertex_definitions, vertex_errors


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int
    body: Any = field(default_factory=dict)


class _RecordingServer:
    """A threaded loopback HTTP server that records requests and routes them to ``handle``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.rejections: list[str] = []  # request bodies refused by the published schema
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                request = RecordedRequest(
                    self.command,
                    unquote(split.path),
                    parse_qs(split.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with owner._lock:
                    owner.requests.append(request)
                    reply = owner.handle(request)
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> _RecordingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def handle(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def find(self, method: str, path_part: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    def all_text(self) -> str:
        """Every recorded path, query, non-auth header and body, for secret-leak checks."""
        chunks = []
        for r in self.requests:
            headers = {k: v for k, v in r.headers.items() if k != "authorization"}
            chunks.append(f"{r.method} {r.path} {r.query} {headers} {r.body.decode(errors='replace')}")
        return "\n".join(chunks)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeKfpApiServer(_RecordingServer):
    """The KFP v2beta1 endpoints ``kfp.Client`` uses; in-memory pipelines, versions, runs, schedules.

    ``token``: when set, every request must carry ``Authorization: Bearer <token>`` (else 401).
    ``forbidden``: answer 403 to everything but the health check. ``run_states``: the states a run
    reports on successive ``GET runs/{id}`` calls (the last one repeats).
    """

    PREFIX = "/apis/v2beta1"

    def __init__(self) -> None:
        kfp_definitions()  # skips the test when kfp_server_api cannot be imported
        super().__init__()
        self.token: str | None = None
        self.forbidden = False
        self.run_states: list[str] = ["RUNNING", "SUCCEEDED"]
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, list[dict]] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.recurring_runs: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self._run_polls: dict[str, int] = {}

    def _id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    def _refused(self, definition: str, request: RecordedRequest) -> Reply | None:
        """A 400 as the API server's gateway answers (protojson, unknown fields refused), or None."""
        problems = kfp_errors(definition, request.json())
        if not problems:
            return None
        message = f"invalid {definition}: " + "; ".join(problems)
        self.rejections.append(message)
        return Reply(400, {"error": message, "code": 3, "message": message, "details": []})

    def handle(self, request: RecordedRequest) -> Reply:
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"error": "Unauthorized: invalid bearer token", "code": 16})
        path = request.path.removeprefix(self.PREFIX)
        if path == "/healthz":
            return Reply(200, {"multi_user": False, "pipeline_store": "database"})
        if self.forbidden:
            return Reply(403, {"error": "user is not allowed to access namespace", "code": 7})
        for method, prefix, handler in self._routes():
            if request.method == method and (
                path == prefix or (prefix.endswith("/") and path.startswith(prefix))
            ):
                return handler(request, path.removeprefix(prefix))
        return Reply(404, {"error": f"no route {request.method} {path}", "code": 5})

    def _routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/pipelines", self._list_pipelines),
            ("POST", "/pipelines/upload", self._upload),
            ("POST", "/pipelines/upload_version", self._upload_version),
            ("GET", "/pipelines/", self._pipeline_subresource),
            ("GET", "/experiments", self._list_experiments),
            ("POST", "/experiments", self._create_experiment),
            ("GET", "/experiments/", lambda r, rest: Reply(200, self.experiments[rest])),
            ("POST", "/runs", self._create_run),
            ("GET", "/runs/", self._get_run),
            ("POST", "/recurringruns", self._create_recurring_run),
            ("GET", "/recurringruns", self._list_recurring_runs),
            ("GET", "/recurringruns/", self._get_recurring_run),
            ("POST", "/recurringruns/", self._recurring_run_action),
            ("DELETE", "/recurringruns/", self._delete_recurring_run),
        ]

    @staticmethod
    def _filter_value(request: RecordedRequest) -> str | None:
        raw = request.query.get("filter", [None])[0]
        if not raw:
            return None
        predicates = json.loads(raw).get("predicates", [])
        assert predicates and predicates[0]["key"] == "display_name", raw
        assert predicates[0]["operation"] in ("EQUALS", 1), raw
        return predicates[0]["stringValue"]

    def _list_pipelines(self, request: RecordedRequest, _: str) -> Reply:
        wanted = self._filter_value(request)
        found = [p for p in self.pipelines.values() if wanted is None or p["display_name"] == wanted]
        return Reply(200, {"pipelines": found, "total_size": len(found)} if found else {})

    @staticmethod
    def _uploaded_file(request: RecordedRequest) -> bytes:
        message = email.parser.BytesParser().parsebytes(
            b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.body
        )
        for part in message.walk():
            if part.get_param("name", header="content-disposition") == "uploadfile":
                return part.get_payload(decode=True)
        raise AssertionError("multipart upload without an 'uploadfile' part")

    @staticmethod
    def _spec_struct(content: bytes) -> dict:
        """The stored spec as ``YamlStringToPipelineSpecStruct`` returns it (KFP 2.17.0,
        backend/src/apiserver/server/api_util.go): documents split on "\n---\n"; one whose
        ``platforms`` has ``kubernetes`` is the platform spec; with one, both come wrapped.
        """
        pipeline_spec: dict | None = None
        platform_spec: dict | None = None
        for document in content.decode().split("\n---\n"):
            data = yaml.safe_load(document)
            if isinstance(data, dict) and "kubernetes" in (data.get("platforms") or {}):
                platform_spec = data
            else:
                pipeline_spec = data or {}
        if pipeline_spec is None:
            raise AssertionError("No pipeline spec provided in yaml doc")
        if platform_spec is None:
            return pipeline_spec
        return {"pipeline_spec": pipeline_spec, "platform_spec": platform_spec}

    def _new_version(self, pipeline_id: str, name: str, description: str, content: bytes) -> dict:
        version = {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": self._id("version"),
            "display_name": name,
            "name": name,
            "description": description,
            "created_at": _now(),
            "pipeline_spec": self._spec_struct(content),
        }
        self.versions.setdefault(pipeline_id, []).append(version)
        return version

    def _upload(self, request: RecordedRequest, _: str) -> Reply:
        name = request.query["name"][0]
        if any(p["display_name"] == name for p in self.pipelines.values()):
            return Reply(409, {"error": f"pipeline {name} already exists", "code": 6})
        pipeline_id = self._id("pipeline")
        description = request.query.get("description", [""])[0]
        pipeline = {
            "pipeline_id": pipeline_id,
            "display_name": name,
            "name": name,
            "description": description,
            "created_at": _now(),
            "namespace": request.query.get("namespace", [""])[0],
        }
        self.pipelines[pipeline_id] = pipeline
        self._new_version(pipeline_id, name, description, self._uploaded_file(request))
        return Reply(200, pipeline)

    def _upload_version(self, request: RecordedRequest, _: str) -> Reply:
        pipeline_id = request.query["pipelineid"][0]
        if pipeline_id not in self.pipelines:
            return Reply(404, {"error": f"pipeline {pipeline_id} not found", "code": 5})
        version = self._new_version(
            pipeline_id,
            request.query["name"][0],
            request.query.get("description", [""])[0],
            self._uploaded_file(request),
        )
        return Reply(200, version)  # toApiPipelineVersion: the spec included

    def _pipeline_subresource(self, request: RecordedRequest, rest: str) -> Reply:
        pipeline_id, _, tail = rest.partition("/versions")
        versions = self.versions.get(pipeline_id)
        if versions is None:
            return Reply(404, {"error": "pipeline not found", "code": 5})
        if tail.startswith("/"):
            matches = [v for v in versions if v["pipeline_version_id"] == tail[1:]]
            return (
                Reply(200, matches[0]) if matches else Reply(404, {"error": "version not found", "code": 5})
            )
        size = int(request.query.get("page_size", ["10"])[0])
        start = int(request.query.get("page_token", ["0"])[0] or 0)
        page = versions[start : start + size]
        body: dict[str, Any] = {
            "pipeline_versions": page,  # the real server lists versions with their specs
            "total_size": len(versions),
        }
        if start + size < len(versions):
            body["next_page_token"] = str(start + size)
        return Reply(200, body)

    def _list_experiments(self, request: RecordedRequest, _: str) -> Reply:
        wanted = self._filter_value(request)
        found = [e for e in self.experiments.values() if wanted is None or e["display_name"] == wanted]
        return Reply(200, {"experiments": found, "total_size": len(found)} if found else {})

    def _create_experiment(self, request: RecordedRequest, _: str) -> Reply:
        refused = self._refused("V2beta1Experiment", request)
        if refused:
            return refused
        experiment = {**request.json(), "experiment_id": self._id("experiment"), "created_at": _now()}
        self.experiments[experiment["experiment_id"]] = experiment
        return Reply(200, experiment)

    def _create_run(self, request: RecordedRequest, _: str) -> Reply:
        refused = self._refused("V2beta1Run", request)
        if refused:
            return refused
        run = {**request.json(), "run_id": self._id("run"), "state": "PENDING", "created_at": _now()}
        self.runs[run["run_id"]] = run
        return Reply(200, run)

    def _get_run(self, request: RecordedRequest, run_id: str) -> Reply:
        run = self.runs.get(run_id)
        if run is None:
            return Reply(404, {"error": "run not found", "code": 5})
        polls = self._run_polls.get(run_id, 0)
        self._run_polls[run_id] = polls + 1
        state = self.run_states[min(polls, len(self.run_states) - 1)]
        body = {**run, "state": state}
        if state == "FAILED":
            body["error"] = {"code": 2, "message": "task train-model failed: exit code 1"}
        return Reply(200, body)

    def _create_recurring_run(self, request: RecordedRequest, _: str) -> Reply:
        refused = self._refused("V2beta1RecurringRun", request)
        if refused:
            return refused
        body = request.json()
        if not 1 <= int(body["max_concurrency"]) <= 10:  # api_converter.go toModelJob
            message = (
                "Max concurrency of a recurring run must be at least 1 and at most 10. "
                f"Received {body['max_concurrency']}"
            )
            self.rejections.append(message)
            return Reply(400, {"error": message, "code": 3, "message": message, "details": []})
        recurring = {
            **body,
            "recurring_run_id": self._id("recurring"),
            "created_at": _now(),
            "status": "ENABLED" if body.get("mode") == "ENABLE" else "DISABLED",
        }
        self.recurring_runs[recurring["recurring_run_id"]] = recurring
        return Reply(200, recurring)

    def _list_recurring_runs(self, request: RecordedRequest, _: str) -> Reply:
        experiment = request.query.get("experiment_id", [None])[0]
        found = [r for r in self.recurring_runs.values() if experiment in (None, r.get("experiment_id"))]
        return Reply(200, {"recurringRuns": found, "total_size": len(found)} if found else {})

    def _get_recurring_run(self, request: RecordedRequest, rest: str) -> Reply:
        found = self.recurring_runs.get(rest)
        return Reply(200, found) if found else Reply(404, {"error": "recurring run not found", "code": 5})

    def _recurring_run_action(self, request: RecordedRequest, rest: str) -> Reply:
        recurring_id, _, action = rest.partition(":")
        found = self.recurring_runs.get(recurring_id)
        if found is None or action not in ("enable", "disable"):
            return Reply(404, {"error": "recurring run not found", "code": 5})
        found["status"] = "ENABLED" if action == "enable" else "DISABLED"
        found["mode"] = "ENABLE" if action == "enable" else "DISABLE"
        return Reply(200, {})

    def _delete_recurring_run(self, request: RecordedRequest, rest: str) -> Reply:
        if self.recurring_runs.pop(rest, None) is None:
            return Reply(404, {"error": "recurring run not found", "code": 5})
        return Reply(200, {})


class FakeVertexApiServer(_RecordingServer):
    """Vertex AI v1 PipelineJob and Schedule endpoints over REST, and Cloud Storage bucket lookups.

    ``buckets``: names that exist (GET b/{name} answers 404 for others). ``job_states``: states a
    job reports on successive GETs. ``deny``: a status (401/403) for every Vertex call.
    """

    def __init__(self, project: str = "my-proj", region: str = "europe-west4") -> None:
        vertex_definitions()  # skips the test when the stored discovery excerpt is missing
        super().__init__()
        self.project, self.region = project, region
        self.buckets: set[str] = set()
        self.job_states: list[str] = ["PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED"]
        self.deny: int | None = None
        self.jobs: dict[str, dict] = {}
        self.schedules: dict[str, dict] = {}
        self._ids = itertools.count(1001)
        self._job_polls: dict[str, int] = {}

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def _refused(self, schema: str, field: str, request: RecordedRequest) -> Reply | None:
        """Vertex's 400 for a body its discovery schema does not admit (unknown or missing fields)."""
        problems = vertex_errors(schema, request.json())
        if not problems:
            return None
        message = f"Invalid JSON payload received at '{field}': " + "; ".join(problems)
        self.rejections.append(message)
        violations = [{"field": field, "description": problem} for problem in problems]
        return Reply(
            400,
            {
                "error": {
                    "code": 400,
                    "message": message,
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}
                    ],
                }
            },
        )

    def handle(self, request: RecordedRequest) -> Reply:
        if request.path.startswith("/storage/v1/b"):
            return self._storage(request)
        if self.deny:
            status = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}[self.deny]
            return Reply(
                self.deny, {"error": {"code": self.deny, "message": "caller lacks access", "status": status}}
            )
        path = request.path.removeprefix("/v1/")
        if path == f"{self.parent}/pipelineJobs" and request.method == "POST":
            refused = self._refused("GoogleCloudAiplatformV1PipelineJob", "pipeline_job", request)
            if refused:
                return refused
            job_id = request.query["pipelineJobId"][0]
            job = {
                **request.json(),
                "name": f"{self.parent}/pipelineJobs/{job_id}",
                "state": "PIPELINE_STATE_PENDING",
                "createTime": _now(),
            }
            self.jobs[job["name"]] = job
            return Reply(200, job)
        if path.startswith(f"{self.parent}/pipelineJobs/") and request.method == "GET":
            job = self.jobs.get(path)
            if job is None:
                return Reply(404, {"error": {"code": 404, "message": "job not found", "status": "NOT_FOUND"}})
            polls = self._job_polls.get(path, 0)
            self._job_polls[path] = polls + 1
            state = self.job_states[min(polls, len(self.job_states) - 1)]
            body = {**job, "state": state}
            if state == "PIPELINE_STATE_FAILED":
                body["error"] = {"code": 9, "message": "The DAG failed because some tasks failed."}
            return Reply(200, body)
        return self._schedule_route(request, path)

    def _schedule_route(self, request: RecordedRequest, path: str) -> Reply:
        collection = f"{self.parent}/schedules"
        if path == collection and request.method == "POST":
            refused = self._refused("GoogleCloudAiplatformV1Schedule", "schedule", request)
            if refused:
                return refused
            schedule = {
                **request.json(),
                "name": f"{collection}/{next(self._ids)}",
                "state": "ACTIVE",
                "createTime": _now(),
            }
            self.schedules[schedule["name"]] = schedule
            return Reply(200, schedule)
        if path == collection and request.method == "GET":
            return Reply(200, {"schedules": list(self.schedules.values())})
        name, _, action = path.partition(":")
        schedule = self.schedules.get(name)
        if schedule is None:
            return Reply(
                404, {"error": {"code": 404, "message": "schedule not found", "status": "NOT_FOUND"}}
            )
        if request.method == "GET":
            return Reply(200, schedule)
        if request.method == "DELETE":
            del self.schedules[name]
            return Reply(
                200,
                {
                    "name": f"{name}/operations/1",
                    "done": True,
                    "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
                },
            )
        if action in ("pause", "resume"):
            schedule["state"] = "PAUSED" if action == "pause" else "ACTIVE"
            return Reply(200, {})
        return Reply(404, {"error": {"code": 404, "message": "no route", "status": "NOT_FOUND"}})

    def _storage(self, request: RecordedRequest) -> Reply:
        if request.method == "POST":
            body = request.json()
            self.buckets.add(body["name"])
            return Reply(200, {"name": body["name"], "location": body.get("location", "")})
        name = request.path.removeprefix("/storage/v1/b/")
        if name in self.buckets:
            return Reply(200, {"name": name, "projectNumber": "123456"})
        return Reply(404, {"error": {"code": 404, "message": "The specified bucket does not exist."}})


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No credentials or endpoints from the developer's environment leak into a test."""
    import kfp

    for name in (
        "KFP_CICD_KFP_TOKEN",
        "KFP_CICD_KFP_HOST",
        "KF_PIPELINES_ENDPOINT",
        "KF_PIPELINES_UI_ENDPOINT",
        "KF_PIPELINES_SA_TOKEN_PATH",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(tmp_path / "no-sa-token"))
    monkeypatch.setenv("KFP_CICD_CODE_REVISION", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))


@pytest.fixture
def kfp_api(clean_env: None) -> Any:
    server = FakeKfpApiServer().start()
    yield server
    server.stop()


@pytest.fixture
def vertex_api(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    server = FakeVertexApiServer().start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)  # the storage client's documented override
    yield server
    server.stop()
