"""Create a PyTorchJob, follow its conditions, stream the master's log, clean up on cancel/timeout.

training-operator v1 reports progress as ``status.conditions`` (Created, Running, Restarting,
Succeeded, Failed); the newest condition whose status is ``"True"`` is the job's state. The runner
polls the job (watches through proxies and API-server restarts are less robust than a short poll),
prints each new condition and the new lines of the Master pod's log, and:

- returns the job when it Succeeded;
- raises :class:`PyTorchJobFailed` with the operator's reason and message when it Failed;
- deletes the job (its pods go with it) and raises when the task is cancelled (SIGTERM, which is
  what Kubeflow sends a run's pods) or runs past its timeout, so no GPUs stay allocated.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from kubernetes import client
from kubernetes.client.rest import ApiException

from kfp_cicd.components.train_pytorchjob.manifest import CONTAINER_NAME, GROUP, PLURAL, VERSION
from kfp_cicd.errors import KfpCicdError

log = logging.getLogger(__name__)
TERMINAL = ("Succeeded", "Failed")


class PyTorchJobFailed(KfpCicdError, RuntimeError):
    """The PyTorchJob failed, timed out or was cancelled."""


class Cancelled(BaseException):  # BaseException, like KeyboardInterrupt: no except Exception eats it
    """The task received SIGTERM."""


@dataclass(frozen=True)
class Condition:
    type: str
    reason: str
    message: str

    def describe(self) -> str:
        return f"{self.type} ({self.reason}): {self.message}" if self.reason else self.type


def current_condition(job: dict) -> Condition | None:
    """The newest condition whose status is True (conditions are appended in order)."""
    for condition in reversed((job.get("status") or {}).get("conditions") or []):
        if condition.get("status") == "True":
            return Condition(
                condition.get("type", ""), condition.get("reason", ""), condition.get("message", "")
            )
    return None


@contextmanager
def sigterm_raises_cancelled() -> Iterator[None]:
    """Turn SIGTERM into :class:`Cancelled` while following the job (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Cancelled()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class PyTorchJobRunner:
    """Runs one PyTorchJob through the kubernetes client (in-cluster config or a given ApiClient)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        poll_seconds: float = 2.0,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.poll_seconds = poll_seconds
        self.echo = echo
        self._log_lines_seen: dict[str, int] = {}

    def create(self, manifest: dict) -> dict:
        name = manifest["metadata"]["name"]
        try:
            created = self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, manifest
            )
        except ApiException as error:
            hint = {
                409: "a job of that name exists; choose another job_name",
                404: "is the Kubeflow Training Operator (PyTorchJob CRD) installed?",
                403: "the pipeline's service account may not create pytorchjobs in this namespace",
            }
            raise PyTorchJobFailed(
                f"creating PyTorchJob {self.namespace}/{name} failed: HTTP "
                f"{error.status} {error.reason}; {hint.get(error.status, error.body)}"
            ) from None
        self.echo(f"created PyTorchJob {self.namespace}/{name}")
        return created

    def get(self, name: str) -> dict:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def delete(self, name: str) -> None:
        """Delete the job and (propagation Background) its pods; a job already gone is fine."""
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, propagation_policy="Background"
            )
            self.echo(f"deleted PyTorchJob {self.namespace}/{name}")
        except ApiException as error:
            if error.status != 404:
                raise

    def stream_master_log(self, name: str) -> None:
        """Echo the Master pod's log lines not shown yet (its pod may not exist yet)."""
        pod = f"{name}-master-0"
        try:
            text = self.core.read_namespaced_pod_log(pod, self.namespace, container=CONTAINER_NAME)
        except ApiException as error:
            if error.status in (400, 404):  # not created / not started yet
                return
            raise
        lines = text.splitlines()
        seen = self._log_lines_seen.get(pod, 0)
        if len(lines) < seen:  # the pod was restarted: its log starts over
            seen = 0
        for line in lines[seen:]:
            self.echo(f"[{pod}] {line}")
        self._log_lines_seen[pod] = len(lines)

    def wait(self, name: str, timeout_s: float) -> dict:
        """Follow the job until Succeeded (returned) or Failed/timeout (raised)."""
        deadline = time.monotonic() + timeout_s
        last: Condition | None = None
        while True:
            job = self.get(name)
            condition = current_condition(job)
            if condition is not None and condition != last:
                self.echo(f"PyTorchJob {self.namespace}/{name}: {condition.describe()}")
                last = condition
            self.stream_master_log(name)
            if condition is not None and condition.type == "Succeeded":
                return job
            if condition is not None and condition.type == "Failed":
                raise PyTorchJobFailed(
                    f"PyTorchJob {self.namespace}/{name} failed: "
                    f"{condition.reason or 'no reason given'}: {condition.message}"
                )
            if time.monotonic() >= deadline:
                raise TimeoutError(name)
            time.sleep(self.poll_seconds)

    def run(self, manifest: dict, timeout_s: float) -> dict:
        """Create, follow and return the succeeded job; delete it when cancelled or timed out."""
        name = manifest["metadata"]["name"]
        with sigterm_raises_cancelled():
            self.create(manifest)
            try:
                return self.wait(name, timeout_s)
            except TimeoutError:
                self.delete(name)
                raise PyTorchJobFailed(
                    f"PyTorchJob {self.namespace}/{name} did not finish within "
                    f"{timeout_s:.0f}s; it was deleted (raise timeout_seconds if "
                    "training needs longer)"
                ) from None
            except Cancelled:
                self.echo(f"cancelled: deleting PyTorchJob {self.namespace}/{name}")
                self.delete(name)
                raise PyTorchJobFailed(
                    f"the task was cancelled; PyTorchJob {self.namespace}/{name} was deleted"
                ) from None
