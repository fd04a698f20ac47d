"""Fixtures of the training tests: ``FakeKubernetesApiServer``, a stand-in for the Kubernetes API.

No Kubernetes API exists here, so the launcher's real kubernetes client talks to this small HTTP
server on loopback. It is plainly a FAKE: it stores PyTorchJobs (kubeflow.org/v1) in memory, records
every request, and moves each job's ``status.conditions`` as training-operator v1 would. In ``run``
mode it plays the operator for real: it starts every replica's container command as a local
process (``python`` → this interpreter; the image is not pulled) with the environment the operator
sets (MASTER_ADDR=127.0.0.1, MASTER_PORT, WORLD_SIZE, RANK, PET_NNODES, PET_NODE_RANK,
PET_NPROC_PER_NODE), serves the Master process's output as the pod log, and reports Succeeded or
Failed from the exit codes. ``hang`` keeps a job Running; ``script`` replays given conditions.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

JOBS = re.compile(r"^/apis/kubeflow\.org/v1/namespaces/([^/]+)/pytorchjobs(?:/([^/?]+))?(?:\?.*)?$")
POD_LOG = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log(?:\?.*)?$")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class FakeJob:
    body: dict
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    master_log: Path | None = None
    script: list[tuple[str, str, str]] = field(default_factory=list)

    def add_condition(self, kind: str, reason: str = "", message: str = "") -> None:
        conditions = self.body.setdefault("status", {}).setdefault("conditions", [])
        for condition in conditions:
            condition["status"] = "False" if condition["type"] in ("Running", "Restarting") else \
                condition["status"]
        conditions.append({"type": kind, "status": "True", "reason": reason, "message": message,
                           "lastTransitionTime": _now()})

    def kill(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


class FakeKubernetesApiServer:
    """FAKE Kubernetes API server (loopback) for PyTorchJobs and pod logs; see the module docstring."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.mode = "run"
        self.script: list[tuple[str, str, str]] = []
        self.jobs: dict[tuple[str, str], FakeJob] = {}
        self.requests: list[tuple[str, str, dict | None]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def api_client(self):
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def start(self) -> FakeKubernetesApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for job in self.jobs.values():
            job.kill()

    def created_bodies(self) -> list[dict]:
        return [body for method, path, body in self.requests if method == "POST" and body]

    def deleted(self) -> list[str]:
        return [path.split("?")[0].rsplit("/", 1)[-1] for method, path, _ in self.requests
                if method == "DELETE"]

    # --- the operator's part -------------------------------------------------------------------
    def _start_replicas(self, job: FakeJob) -> None:
        spec = job.body["spec"]
        replicas = spec["pytorchReplicaSpecs"]
        nnodes = sum(r["replicas"] for r in replicas.values())
        nproc = int(spec.get("nprocPerNode", "1"))
        port = _free_port()
        name = job.body["metadata"]["name"]
        node = 0
        for kind in ("Master", "Worker"):
            for index in range(replicas.get(kind, {}).get("replicas", 0)):
                container = replicas[kind]["template"]["spec"]["containers"][0]
                env = {**os.environ, **{e["name"]: e["value"] for e in container.get("env", [])},
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "WORLD_SIZE": str(nnodes * nproc), "RANK": str(node),
                       "PET_NNODES": str(nnodes), "PET_NODE_RANK": str(node),
                       "PET_NPROC_PER_NODE": str(nproc)}
                command = list(container["command"]) + list(container.get("args", []))
                if command[0] == "python":
                    command[0] = sys.executable
                pod = f"{name}-{kind.lower()}-{index}"
                log_path = self.log_dir / f"{pod}.log"
                with open(log_path, "wb") as log_file:
                    process = subprocess.Popen(command, env=env, stdout=log_file,
                                               stderr=subprocess.STDOUT)
                if kind == "Master":
                    job.master_log = log_path
                job.processes.append((kind, process))
                node += 1
        job.add_condition("Running", "PyTorchJobRunning",
                          f"PyTorchJob {job.body['metadata']['namespace']}/{name} is running.")

    def _advance(self, job: FakeJob) -> None:
        """Called on each GET: move the job's state as the operator would."""
        namespace, name = job.body["metadata"]["namespace"], job.body["metadata"]["name"]
        if job.script:
            job.add_condition(*job.script.pop(0))
            return
        if not job.processes:
            return
        codes = [(kind, process.poll()) for kind, process in job.processes]
        failed = [kind for kind, code in codes if code not in (None, 0)]
        current = job.body["status"]["conditions"][-1]["type"]
        if failed and current == "Running":
            job.kill()
            job.add_condition("Failed", "PyTorchJobFailed",
                              f"PyTorchJob {namespace}/{name} is failed because 1 {failed[0]} "
                              "replica(s) failed.")
        elif all(code == 0 for _, code in codes) and current == "Running":
            job.add_condition("Succeeded", "PyTorchJobSucceeded",
                              f"PyTorchJob {namespace}/{name} successfully completed.")

    # --- HTTP ------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, payload: dict | str) -> None:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if isinstance(payload, str)
                                 else "application/json")
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

            def _status(self, code: int, reason: str, message: str) -> None:
                self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "message": message, "reason": reason, "code": code})

            def _body(self) -> dict | None:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def do_POST(self) -> None:
                body = self._body()
                with fake.lock:
                    fake.requests.append(("POST", self.path, body))
                    match = JOBS.match(self.path)
                    if not match or match.group(2) or body is None:
                        return self._status(404, "NotFound", f"no route {self.path}")
                    namespace, name = match.group(1), body["metadata"]["name"]
                    if (namespace, name) in fake.jobs:
                        return self._status(409, "AlreadyExists", f"pytorchjobs {name} already exists")
                    body["metadata"].update(namespace=namespace, uid=f"uid-{len(fake.jobs)}",
                                            creationTimestamp=_now())
                    job = FakeJob(body=body, script=list(fake.script))
                    job.add_condition("Created", "PyTorchJobCreated",
                                      f"PyTorchJob {namespace}/{name} is created.")
                    fake.jobs[(namespace, name)] = job
                    if fake.mode == "run":
                        fake._start_replicas(job)
                    elif fake.mode == "hang":
                        job.add_condition("Running", "PyTorchJobRunning", "running")
                    self._send(201, body)

            def do_GET(self) -> None:
                with fake.lock:
                    fake.requests.append(("GET", self.path, None))
                    if match := JOBS.match(self.path):
                        job = fake.jobs.get((match.group(1), match.group(2)))
                        if job is None:
                            return self._status(404, "NotFound", "not found")
                        fake._advance(job)
                        return self._send(200, job.body)
                    if match := POD_LOG.match(self.path):
                        namespace, pod = match.groups()
                        job_name = pod.rsplit("-master-0", 1)[0]
                        job = fake.jobs.get((namespace, job_name))
                        if job is None or job.master_log is None:
                            return self._status(404, "NotFound", f"pods {pod} not found")
                        return self._send(200, job.master_log.read_text(errors="replace"))
                    self._status(404, "NotFound", f"no route {self.path}")

            def do_DELETE(self) -> None:
                self._body()
                with fake.lock:
                    fake.requests.append(("DELETE", self.path, None))
                    match = JOBS.match(self.path)
                    job = fake.jobs.pop((match.group(1), match.group(2)), None) if match else None
                    if job is None:
                        return self._status(404, "NotFound", "not found")
                    job.kill()
                    self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

        return Handler


@pytest.fixture
def fake_kubernetes(tmp_path: Path):
    """A started ``FakeKubernetesApiServer``; stopped (and its processes killed) afterwards."""
    log_dir = tmp_path / "pod-logs"
    log_dir.mkdir()
    server = FakeKubernetesApiServer(log_dir).start()
    try:
        yield server
    finally:
        server.stop()
