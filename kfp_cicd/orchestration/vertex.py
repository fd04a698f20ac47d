"""Submit and schedule compiled pipelines on Vertex AI Pipelines through the real aiplatform SDK.

Two deliberate differences from ``PipelineJob.submit()``:

- the pipeline root's bucket is checked here and never created behind the user's back: the SDK
  silently creates a missing bucket (and grants IAM on it) and, for an existing one, looks up the
  project number in Resource Manager (a minute of retries where that is unreachable, e.g. behind
  Private Service Connect). A missing bucket is an error unless ``create_bucket`` says otherwise;
- the job is created with the SDK's own ``PipelineJob`` object and API client, so request building
  (spec loading, runtime config, job-id and label validation) is the SDK's.

Schedules use ``PipelineJob.create_schedule`` and ``PipelineJobSchedule`` as they are.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from kfp_cicd.orchestration.errors import (
    AuthenticationError,
    NotFoundError,
    OrchestrationError,
    ParameterError,
    RunFailed,
    ServiceUnreachable,
    SpecError,
)
from kfp_cicd.orchestration.parameters import typed_parameters
from kfp_cicd.orchestration.spec import CompiledPipeline, require_single_document
from kfp_cicd.orchestration.versioning import job_id as default_job_id
from kfp_cicd.orchestration.versioning import revision_token
from kfp_cicd.parameter_validation import is_bucket_name

Report = Callable[[str], None]
T = TypeVar("T")
SUCCEEDED = "PIPELINE_STATE_SUCCEEDED"
FAILED = frozenset({"PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"})
_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class VertexTarget:
    """Where and as whom to call Vertex AI."""

    project: str
    region: str
    api_endpoint: str | None = None
    credentials: Any = field(default=None, repr=False)
    api_transport: str = "rest"

    def init(self) -> None:
        """Configure the SDK (``aiplatform.init``) for this project, region and endpoint."""
        from google.cloud import aiplatform

        try:
            aiplatform.init(
                project=self.project,
                location=self.region,
                credentials=self.credentials,
                api_endpoint=self.api_endpoint,
                api_transport=self.api_transport,
            )
        except ValueError as exc:
            raise ParameterError(f"Vertex AI settings refused: {str(exc)[:300]}") from None

    def job_link(self, job_id: str) -> str:
        return (
            f"https://console.cloud.google.com/vertex-ai/locations/{self.region}/pipelines/runs/"
            f"{job_id}?project={self.project}"
        )

    def schedule_link(self, schedule_id: str) -> str:
        return (
            f"https://console.cloud.google.com/vertex-ai/locations/{self.region}/pipelines/schedules/"
            f"{schedule_id}?project={self.project}"
        )


@dataclass(frozen=True)
class VertexJobResult:
    job_id: str
    resource_name: str
    state: str
    link: str
    parameters: dict[str, Any]
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VertexScheduleResult:
    schedule_id: str
    resource_name: str
    name: str
    state: str
    cron: str
    max_concurrent_run_count: int
    max_run_count: int
    link: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_labels(items: list[str]) -> dict[str, str]:
    """``k=v`` strings as Vertex labels (lowercase keys/values, ≤ 63 characters)."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _LABEL.match(key) or not _LABEL_VALUE.match(value):
            raise ParameterError(
                f"--labels {item!r}: labels are key=value with lowercase letters, digits, "
                "'-' and '_' (keys start with a letter, both at most 63 characters)"
            )
        labels[key] = value
    return labels


def bucket_of(pipeline_root: str) -> str:
    """The bucket of a ``gs://bucket/path`` pipeline root."""
    bucket = pipeline_root.removeprefix("gs://").partition("/")[0]
    if not pipeline_root.startswith("gs://") or not is_bucket_name(bucket):
        raise ParameterError(f"--pipeline-root {pipeline_root!r} is not a gs://bucket/path URI")
    return bucket


def ensure_pipeline_root(
    target: VertexTarget, pipeline_root: str, report: Report, create_bucket: bool = False
) -> None:
    """Check the pipeline root's bucket exists; create it only when asked, and say so."""
    from google.api_core import exceptions
    from google.cloud import storage

    name = bucket_of(pipeline_root)
    client = storage.Client(project=target.project, credentials=target.credentials)
    try:
        exists = client.bucket(name).exists(timeout=30, retry=None)
    except exceptions.Forbidden:
        report(
            f"cannot check bucket gs://{name} (403); continuing: the pipeline's service account "
            "needs read/write access to it"
        )
        return
    except Exception as exc:
        raise ServiceUnreachable(f"cannot check bucket gs://{name} ({type(exc).__name__}: {exc})") from None
    if exists:
        report(f"pipeline root {pipeline_root} (bucket exists)")
        return
    if not create_bucket:
        raise NotFoundError(
            f"bucket gs://{name} of --pipeline-root does not exist; create it (gcloud storage "
            f"buckets create gs://{name} --project {target.project} --location {target.region}) "
            "or pass --create-bucket"
        )
    report(f"creating bucket gs://{name} in {target.region} (--create-bucket)")
    client.create_bucket(name, project=target.project, location=target.region, retry=None, timeout=60)


def submit(
    target: VertexTarget,
    pipeline: CompiledPipeline,
    params: list[str],
    pipeline_root: str,
    revision: str,
    report: Report,
    *,
    service_account: str | None = None,
    network: str | None = None,
    labels: dict[str, str] | None = None,
    display_name: str | None = None,
    job_id: str | None = None,
    enable_caching: bool | None = None,
    create_bucket: bool = False,
) -> VertexJobResult:
    """Create a Vertex PipelineJob from the single-document spec with typed parameters."""
    job = _pipeline_job(
        target, pipeline, params, pipeline_root, revision, labels, display_name, job_id, enable_caching
    )
    ensure_pipeline_root(target, pipeline_root, report, create_bucket)
    if service_account:
        job._gca_resource.service_account = service_account
    if network:
        job._gca_resource.network = network
    report(f"submitting PipelineJob {job.job_id} to {target.project}/{target.region}")
    with vertex_errors("PipelineJob creation", target):
        job._gca_resource = job.api_client.create_pipeline_job(
            parent=job._parent, pipeline_job=job._gca_resource, pipeline_job_id=job.job_id
        )
    link = target.job_link(job.job_id)
    report(f"created PipelineJob {job.job_id}: {link}")
    return VertexJobResult(
        job_id=job.job_id,
        resource_name=job.resource_name,
        state=job._gca_resource.state.name,
        link=link,
        parameters=dict(job.runtime_config.parameter_values),
    )


def wait_for_job(
    target: VertexTarget,
    result: VertexJobResult,
    report: Report,
    timeout_s: float | None = None,
    poll_s: float = 15.0,
) -> VertexJobResult:
    """Follow a PipelineJob to its end; :class:`RunFailed` if it failed or was cancelled."""
    from google.cloud import aiplatform

    with vertex_errors("PipelineJob lookup", target):
        job = aiplatform.PipelineJob.get(result.resource_name, credentials=target.credentials)
    started = time.monotonic()
    last = ""
    while True:
        state = job._gca_resource.state.name  # as of the last GET (PipelineJob.get made the first)
        if state != last:
            report(f"PipelineJob {result.job_id}: {state}")
            last = state
        if state == SUCCEEDED or state in FAILED:
            break
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise OrchestrationError(
                f"PipelineJob {result.job_id} still {state} after {timeout_s:.0f}s; it keeps "
                f"running: follow it at {result.link}"
            )
        time.sleep(poll_s)
        with vertex_errors("PipelineJob status", target):
            job._sync_gca_resource()
    error = job._gca_resource.error.message if job._gca_resource.error else ""
    if state in FAILED:
        raise RunFailed(
            f"PipelineJob {result.job_id} {state}" + (f": {error}" if error else "") + f"; see {result.link}"
        )
    return VertexJobResult(**{**result.to_dict(), "state": state, "error": error})


def create_schedule(
    target: VertexTarget,
    pipeline: CompiledPipeline,
    params: list[str],
    pipeline_root: str,
    revision: str,
    report: Report,
    *,
    cron: str,
    name: str | None = None,
    max_concurrent: int = 1,
    max_runs: int | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
    service_account: str | None = None,
    network: str | None = None,
    labels: dict[str, str] | None = None,
    replace: bool = False,
    create_bucket: bool = False,
) -> VertexScheduleResult:
    """A schedule via ``PipelineJob.create_schedule``; ``replace`` swaps out one of the same name.

    The new schedule is created before the old one is deleted: if creation fails, the old
    schedule keeps running unchanged.
    """
    if max_concurrent < 1:
        raise ParameterError("--max-concurrent must be at least 1")
    if max_runs is not None and max_runs < 1:
        raise ParameterError("--max-runs must be at least 1")
    name = name or f"{pipeline.name} schedule"
    job = _pipeline_job(target, pipeline, params, pipeline_root, revision, labels, None, None, None)
    existing = [s for s in _schedules(target) if s.display_name == name]
    if existing and not replace:
        raise OrchestrationError(
            f"a Vertex schedule named {name!r} already exists ({existing[0].resource_name}); "
            "pass --replace to swap it for this spec, or --name for a second schedule"
        )
    ensure_pipeline_root(target, pipeline_root, report, create_bucket)
    report(
        f"creating Vertex schedule {name!r}: {cron}, max concurrent {max_concurrent}"
        + (f", max runs {max_runs}" if max_runs else "")
    )
    with vertex_errors("schedule creation", target):
        schedule = job.create_schedule(
            cron=cron,
            display_name=name,
            start_time=start_time,
            end_time=end_time,
            max_run_count=max_runs,
            max_concurrent_run_count=max_concurrent,
            service_account=service_account,
            network=network,
        )
    for old in existing:
        report(f"deleting the replaced schedule {old.resource_name}")
        with vertex_errors("schedule deletion", target):
            old.delete()
    return schedule_result(target, schedule)


def list_schedules(target: VertexTarget) -> list[VertexScheduleResult]:
    """Every PipelineJob schedule in the project and region."""
    return [schedule_result(target, s) for s in _schedules(target)]


def change_schedule(target: VertexTarget, schedule: str, action: str) -> VertexScheduleResult | None:
    """``pause``, ``resume`` or ``delete`` a schedule given by id or resource name."""
    from google.cloud import aiplatform

    with vertex_errors(f"schedule {action}", target):
        found = aiplatform.PipelineJobSchedule.get(
            schedule, project=target.project, location=target.region, credentials=target.credentials
        )
        if action == "delete":
            found.delete()
            return None
        if action == "pause":
            found.pause()
        elif action == "resume":
            found.resume(catch_up=False)
        else:
            raise ParameterError(f"unknown schedule action {action!r}")
        found._sync_gca_resource()
    return schedule_result(target, found)


def schedule_result(target: VertexTarget, schedule: Any) -> VertexScheduleResult:
    resource = schedule._gca_resource
    schedule_id = resource.name.rsplit("/", 1)[-1]
    return VertexScheduleResult(
        schedule_id=schedule_id,
        resource_name=resource.name,
        name=resource.display_name,
        state=resource.state.name,
        cron=resource.cron,
        max_concurrent_run_count=int(resource.max_concurrent_run_count),
        max_run_count=int(resource.max_run_count),
        link=target.schedule_link(schedule_id),
    )


@contextmanager
def vertex_errors(operation: str, target: VertexTarget) -> Iterator[None]:
    """Translate google-api-core and transport errors into orchestration errors."""
    import requests
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions

    where = target.api_endpoint or f"{target.region}-aiplatform.googleapis.com"
    try:
        yield
    except (exceptions.Unauthenticated, exceptions.Unauthorized) as exc:
        raise AuthenticationError(
            f"Vertex AI ({where}) rejected the credentials during {operation} (401: {exc.message}); run "
            "`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS / workload "
            "identity federation in CI"
        ) from None
    except (exceptions.PermissionDenied, exceptions.Forbidden) as exc:
        raise AuthenticationError(
            f"Vertex AI ({where}) refused {operation} in project {target.project} (403: {exc.message}); the "
            "identity needs roles/aiplatform.user (and iam.serviceAccountUser on --service-account)"
        ) from None
    except exceptions.NotFound as exc:
        raise NotFoundError(f"{operation}: not found on Vertex AI ({where}) (404: {exc.message})") from None
    except exceptions.GoogleAPICallError as exc:
        raise OrchestrationError(
            f"Vertex AI ({where}) failed {operation} ({exc.code}: {exc.message})"
        ) from None
    except auth_exceptions.DefaultCredentialsError as exc:
        raise AuthenticationError(
            f"no Google credentials for {operation} ({exc}); run `gcloud auth "
            "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from None
    except (requests.exceptions.ConnectionError, exceptions.RetryError) as exc:
        raise ServiceUnreachable(
            f"cannot reach Vertex AI at {where} during {operation} ({type(exc).__name__}); "
            "check --region / --api-endpoint and the network"
        ) from None


def _pipeline_job(
    target: VertexTarget,
    pipeline: CompiledPipeline,
    params: list[str],
    pipeline_root: str,
    revision: str,
    labels: dict[str, str] | None,
    display_name: str | None,
    job_id: str | None,
    enable_caching: bool | None,
) -> Any:
    from google.cloud import aiplatform

    require_single_document(pipeline)
    values = typed_parameters(pipeline, params)
    bucket_of(pipeline_root)
    all_labels = {
        "kfp-cicd-revision": revision_token(revision, pipeline.sha256)[:63].replace(".", "-"),
        **(labels or {}),
    }
    try:
        return aiplatform.PipelineJob(
            display_name=display_name or pipeline.name,
            template_path=str(pipeline.path),
            job_id=job_id or default_job_id(pipeline.name, revision, pipeline.sha256),
            pipeline_root=pipeline_root,
            parameter_values=values,
            labels=all_labels,
            enable_caching=enable_caching,
            project=target.project,
            location=target.region,
            credentials=target.credentials,
        )
    except ValueError as exc:
        raise SpecError(f"Vertex refused the job definition for {pipeline.path}: {exc}") from None


def _schedules(target: VertexTarget) -> list[Any]:
    from google.cloud import aiplatform

    with vertex_errors("schedule listing", target):
        return aiplatform.PipelineJobSchedule.list(
            project=target.project, location=target.region, credentials=target.credentials
        )
