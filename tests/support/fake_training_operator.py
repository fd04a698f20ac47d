"""PyTorchJobs in the FAKE Kubernetes API server (``fake_kubernetes_api``): the training operator's part.

No cluster exists here. This FAKE stores PyTorchJobs (``kubeflow.org/v1``) and moves each job's
``status.conditions`` as training-operator v1 would, on each GET of the job, by ``mode``:

- ``run`` plays the operator for real: it starts every replica's container command as a local
  process (``python`` → this interpreter; the image is not pulled) with the environment the
  operator sets (MASTER_ADDR=127.0.0.1, MASTER_PORT, WORLD_SIZE, RANK, PET_NNODES, PET_NODE_RANK,
  PET_NPROC_PER_NODE), serves the Master process's output as the pod log
  (``/api/v1/namespaces/<ns>/pods/<job>-master-0/log``), and reports Succeeded or Failed from the
  exit codes; deleting the job kills its processes;
- ``hang`` keeps a job Running;
- ``script`` replays the ``(type, reason, message)`` conditions in ``script``, one per GET.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fake_kubernetes_resource import Reply, Resource, Route, StoredObject, status_body, timestamp

_POD_LOG = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<pod>[^/]+)/log$")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class FakeJob(StoredObject):
    """One PyTorchJob, its replica processes and the conditions still to replay."""

    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    master_log: Path | None = None
    script: list[tuple[str, str, str]] = field(default_factory=list)

    def add_condition(self, kind: str, reason: str = "", message: str = "") -> None:
        conditions = self.obj.setdefault("status", {}).setdefault("conditions", [])
        for condition in conditions:
            condition["status"] = (
                "False" if condition["type"] in ("Running", "Restarting") else condition["status"]
            )
        conditions.append(
            {
                "type": kind,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastTransitionTime": timestamp(),
            }
        )

    def kill(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


class PyTorchJobs(Resource):
    """``kubeflow.org/v1`` PyTorchJobs with the training operator's behaviour (see the module docstring)."""

    group, version, plural, kind = "kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"

    def __init__(self, lock: threading.RLock, log_dir: Path | None) -> None:
        super().__init__()
        self.lock = lock
        self._own_log_dir = None if log_dir else tempfile.TemporaryDirectory(prefix="fake-pod-logs-")
        self.log_dir = log_dir or Path(self._own_log_dir.name)
        self.mode = "run"
        self.script: list[tuple[str, str, str]] = []

    def reset(self) -> None:
        super().reset()
        self.mode, self.script = "run", []

    def close(self) -> None:
        super().close()
        if self._own_log_dir is not None:
            self._own_log_dir.cleanup()

    # --- hooks -------------------------------------------------------------------------------------

    def new_entry(self, obj: dict[str, Any]) -> FakeJob:
        return FakeJob(obj, script=list(self.script))

    def created(self, job: FakeJob) -> None:
        namespace, name = job.obj["metadata"]["namespace"], job.obj["metadata"]["name"]
        job.add_condition("Created", "PyTorchJobCreated", f"PyTorchJob {namespace}/{name} is created.")
        if self.mode == "run":
            self._start_replicas(job)
        elif self.mode == "hang":
            job.add_condition("Running", "PyTorchJobRunning", "running")

    def observed(self, job: FakeJob) -> None:
        """Move the job's state as the operator would (called on each GET)."""
        namespace, name = job.obj["metadata"]["namespace"], job.obj["metadata"]["name"]
        if job.script:
            job.add_condition(*job.script.pop(0))
            return
        if not job.processes:
            return
        codes = [(kind, process.poll()) for kind, process in job.processes]
        failed = [kind for kind, code in codes if code not in (None, 0)]
        current = job.obj["status"]["conditions"][-1]["type"]
        if failed and current == "Running":
            job.kill()
            job.add_condition(
                "Failed",
                "PyTorchJobFailed",
                f"PyTorchJob {namespace}/{name} is failed because 1 {failed[0]} replica(s) failed.",
            )
        elif all(code == 0 for _, code in codes) and current == "Running":
            job.add_condition(
                "Succeeded", "PyTorchJobSucceeded", f"PyTorchJob {namespace}/{name} successfully completed."
            )

    def deleted(self, job: FakeJob) -> None:
        job.kill()

    def routes(self) -> list[Route]:
        return [Route(_POD_LOG, self._pod_log)]

    # --- the operator's part -----------------------------------------------------------------------

    def _start_replicas(self, job: FakeJob) -> None:
        spec = job.obj["spec"]
        replicas = spec["pytorchReplicaSpecs"]
        nnodes = sum(r["replicas"] for r in replicas.values())
        nproc = int(spec.get("nprocPerNode", "1"))
        port = _free_port()
        name = job.obj["metadata"]["name"]
        node = 0
        for kind in ("Master", "Worker"):
            for index in range(replicas.get(kind, {}).get("replicas", 0)):
                container = replicas[kind]["template"]["spec"]["containers"][0]
                env = {
                    **os.environ,
                    **{e["name"]: e["value"] for e in container.get("env", [])},
                    "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": str(port),
                    "WORLD_SIZE": str(nnodes * nproc),
                    "RANK": str(node),
                    "PET_NNODES": str(nnodes),
                    "PET_NODE_RANK": str(node),
                    "PET_NPROC_PER_NODE": str(nproc),
                }
                command = list(container["command"]) + list(container.get("args", []))
                if command[0] == "python":
                    command[0] = sys.executable
                pod = f"{name}-{kind.lower()}-{index}"
                log_path = self.log_dir / f"{pod}.log"
                with open(log_path, "wb") as log_file:
                    process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
                if kind == "Master":
                    job.master_log = log_path
                job.processes.append((kind, process))
                node += 1
        job.add_condition(
            "Running",
            "PyTorchJobRunning",
            f"PyTorchJob {job.obj['metadata']['namespace']}/{name} is running.",
        )

    def _pod_log(self, method: str, match: re.Match[str], body: bytes, headers: Mapping[str, str]) -> Reply:
        """The Master pod's output so far (the only pod whose log the launcher reads)."""
        namespace, pod = match["ns"], match["pod"]
        with self.lock:
            job = self.store.get((namespace, pod.rsplit("-master-0", 1)[0]))
            if method != "GET" or job is None or job.master_log is None:
                return Reply(404, status_body(404, "NotFound", f'pods "{pod}" not found'))
            return Reply(200, job.master_log.read_text(errors="replace"), "text/plain")
