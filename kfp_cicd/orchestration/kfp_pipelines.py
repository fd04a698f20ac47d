"""Upload, run and schedule compiled pipelines on Kubeflow Pipelines through the real ``kfp.Client``.

- :func:`upload` creates the pipeline the first time and a version named from the code revision
  after that; the same revision again is found and left alone.
- :func:`submit` types ``--param`` values from the version's own spec, creates the run and
  returns its UI link; :func:`wait_for_run` follows it and raises :class:`RunFailed` on failure.
- :func:`create_schedule` makes an enabled recurring run, max concurrency 1, no catch-up unless
  asked; :func:`list_schedules`, :func:`set_schedule_enabled`, :func:`delete_schedule` manage them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kfp_server_api

from kfp_cicd.orchestration.errors import NotFoundError, OrchestrationError, RunFailed
from kfp_cicd.orchestration.kfp_connection import KfpConnection
from kfp_cicd.orchestration.parameters import typed_parameters
from kfp_cicd.orchestration.spec import CompiledPipeline, pipeline_from_documents
from kfp_cicd.orchestration.versioning import revision_token, version_name

Report = Callable[[str], None]
SUCCESS_STATES = frozenset({"SUCCEEDED", "SKIPPED"})
FAILURE_STATES = frozenset({"FAILED", "CANCELED"})
PAGE_SIZE = 100


@dataclass(frozen=True)
class UploadResult:
    """What :func:`upload` did: ``created`` (new pipeline), ``new-version`` or ``unchanged``."""

    spec: str
    pipeline: str
    pipeline_id: str
    version: str
    version_id: str
    status: str
    link: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class RunResult:
    """A run created by :func:`submit` (``state`` is final after :func:`wait_for_run`)."""

    run_id: str
    name: str
    pipeline: str
    version: str
    experiment: str
    state: str
    link: str
    parameters: dict[str, Any]
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScheduleResult:
    """One recurring run as the API describes it."""

    recurring_run_id: str
    name: str
    status: str
    trigger: str
    max_concurrency: int
    no_catchup: bool
    pipeline_version_id: str
    link: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def upload(
    conn: KfpConnection,
    pipeline: CompiledPipeline,
    revision: str,
    report: Report,
    semver: str | None = None,
    pipeline_name: str | None = None,
) -> UploadResult:
    """Upload one compiled spec as a new pipeline or a new version of it (idempotent per revision)."""
    name = pipeline_name or pipeline.name
    version = version_name(revision, pipeline.sha256, semver)
    token = revision_token(revision, pipeline.sha256)
    existing = find_pipeline(conn, name)
    if existing is None:
        report(f"pipeline {name!r} not found on {conn.where}: creating it from {pipeline.path}")
        created = conn.call(
            "pipeline upload",
            lambda: conn.client.upload_pipeline(
                str(pipeline.path),
                pipeline_name=name,
                description=pipeline.description,
                namespace=conn.namespace,
            ),
        )
        report(f"created pipeline {name!r} (id {created.pipeline_id}); adding version {version!r}")
        added = _upload_version(conn, pipeline, created.pipeline_id, version, revision)
        return _upload_result(conn, pipeline, name, created.pipeline_id, added, "created")
    pipeline_id = existing.pipeline_id
    same = _version_with_token(conn, pipeline_id, token)
    if same is not None:
        report(f"{name!r} already has version {same.display_name!r} for revision {token}: nothing to upload")
        return _upload_result(conn, pipeline, name, pipeline_id, same, "unchanged")
    report(f"uploading version {version!r} of pipeline {name!r} (id {pipeline_id})")
    added = _upload_version(conn, pipeline, pipeline_id, version, revision)
    return _upload_result(conn, pipeline, name, pipeline_id, added, "new-version")


def find_pipeline(conn: KfpConnection, name: str) -> kfp_server_api.V2beta1Pipeline | None:
    """The pipeline with this display name in the connection's namespace, or None."""
    listed = conn.call(
        "pipeline lookup",
        lambda: conn.client.list_pipelines(
            filter=_equals_filter("display_name", name), namespace=conn.namespace, page_size=PAGE_SIZE
        ),
    )
    matches = [p for p in (listed.pipelines or []) if p.display_name == name]
    if len(matches) > 1:
        raise OrchestrationError(
            f"{len(matches)} pipelines are named {name!r} on {conn.where}; "
            "names must be unique: delete or rename the extra ones"
        )
    return matches[0] if matches else None


def pipeline_versions(
    conn: KfpConnection, pipeline_id: str
) -> Iterator[kfp_server_api.V2beta1PipelineVersion]:
    """Every version of a pipeline, following page tokens."""
    token = ""
    while True:
        page = conn.call(
            "version listing",
            lambda t=token: conn.client.list_pipeline_versions(
                pipeline_id=pipeline_id, page_token=t, page_size=PAGE_SIZE
            ),
        )
        yield from page.pipeline_versions or []
        token = page.next_page_token or ""
        if not token:
            return


def resolve_version(
    conn: KfpConnection, pipeline_name: str, version: str | None
) -> tuple[kfp_server_api.V2beta1Pipeline, kfp_server_api.V2beta1PipelineVersion]:
    """The pipeline and its named version (display name or id), or its newest version."""
    pipeline = find_pipeline(conn, pipeline_name)
    if pipeline is None:
        raise NotFoundError(
            f"no pipeline named {pipeline_name!r} on {conn.where}"
            + (f" in namespace {conn.namespace!r}" if conn.namespace else "")
            + "; upload it first with `kfp-cicd upload`"
        )
    versions = list(pipeline_versions(conn, pipeline.pipeline_id))
    if version:
        chosen = [v for v in versions if version in (v.display_name, v.name, v.pipeline_version_id)]
        if not chosen:
            names = ", ".join(v.display_name for v in versions[-5:]) or "(none)"
            raise NotFoundError(f"pipeline {pipeline_name!r} has no version {version!r}; recent: {names}")
    else:
        chosen = sorted(versions, key=lambda v: str(v.created_at or ""))[-1:]
        if not chosen:
            raise NotFoundError(
                f"pipeline {pipeline_name!r} has no versions; upload one with `kfp-cicd upload`"
            )
    summary = conn.call(
        "version details",
        lambda: conn.client.get_pipeline_version(pipeline.pipeline_id, chosen[0].pipeline_version_id),
    )
    return pipeline, summary


def version_pipeline(version: kfp_server_api.V2beta1PipelineVersion) -> CompiledPipeline:
    """The spec stored with a version, for typing parameters exactly as the server will run them."""
    spec = version.pipeline_spec
    if not isinstance(spec, dict):
        raise OrchestrationError(
            f"version {version.display_name!r} came back without its pipeline spec; "
            "cannot type the parameters"
        )
    return pipeline_from_documents([spec], Path(f"kfp:{version.pipeline_version_id}"))


def submit(
    conn: KfpConnection,
    pipeline_name: str,
    params: list[str],
    report: Report,
    version: str | None = None,
    experiment: str = "Default",
    run_name: str | None = None,
    pipeline_root: str | None = None,
    service_account: str | None = None,
    enable_caching: bool | None = None,
) -> RunResult:
    """Create a run of a pipeline version with parameters typed as its spec declares."""
    pipeline, chosen = resolve_version(conn, pipeline_name, version)
    values = typed_parameters(version_pipeline(chosen), params)
    report(f"pipeline {pipeline_name!r} version {chosen.display_name!r}; parameters: {_show(values)}")
    experiment_obj = conn.call(
        "experiment lookup", lambda: conn.client.create_experiment(name=experiment, namespace=conn.namespace)
    )
    name = run_name or f"{pipeline_name} {chosen.display_name} {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
    run = conn.call(
        "run creation",
        lambda: conn.client.run_pipeline(
            experiment_id=experiment_obj.experiment_id,
            job_name=name,
            params=values,
            pipeline_id=pipeline.pipeline_id,
            version_id=chosen.pipeline_version_id,
            pipeline_root=pipeline_root,
            enable_caching=enable_caching,
            service_account=service_account,
        ),
    )
    link = conn.ui_link(f"/runs/details/{run.run_id}")
    report(f"created run {run.run_id}: {link}")
    return RunResult(
        run_id=run.run_id,
        name=name,
        pipeline=pipeline_name,
        version=chosen.display_name,
        experiment=experiment,
        state=str(run.state or "PENDING"),
        link=link,
        parameters=values,
    )


def wait_for_run(
    conn: KfpConnection, run: RunResult, report: Report, timeout_s: float | None = None, poll_s: float = 10.0
) -> RunResult:
    """Follow a run to its end, reporting state changes; :class:`RunFailed` if it did not succeed."""
    started = time.monotonic()
    last = ""
    while True:
        current = conn.call("run status", lambda: conn.client.get_run(run.run_id))
        state = str(current.state or "PENDING")
        if state != last:
            report(f"run {run.run_id}: {state}")
            last = state
        if state in SUCCESS_STATES or state in FAILURE_STATES:
            break
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise OrchestrationError(
                f"run {run.run_id} still {state} after {timeout_s:.0f}s; it keeps running "
                f"on the cluster: follow it at {run.link}"
            )
        time.sleep(poll_s)
    error = _run_error(current)
    finished = RunResult(**{**run.to_dict(), "state": state, "error": error})
    if state in FAILURE_STATES:
        raise RunFailed(f"run {run.run_id} {state}" + (f": {error}" if error else "") + f"; see {run.link}")
    return finished


def create_schedule(
    conn: KfpConnection,
    pipeline_name: str,
    params: list[str],
    report: Report,
    *,
    cron: str | None = None,
    interval_s: int | None = None,
    version: str | None = None,
    experiment: str = "Default",
    name: str | None = None,
    max_concurrency: int = 1,
    catchup: bool = False,
    start_time: str | None = None,
    end_time: str | None = None,
    replace: bool = False,
    pipeline_root: str | None = None,
    service_account: str | None = None,
) -> ScheduleResult:
    """An enabled recurring run; with ``replace`` an existing one of the same name is swapped out.

    The new recurring run is created before the old one is deleted, so a failure leaves the old
    schedule untouched.
    """
    if max_concurrency < 1:
        raise OrchestrationError("--max-concurrency must be at least 1")
    pipeline, chosen = resolve_version(conn, pipeline_name, version)
    values = typed_parameters(version_pipeline(chosen), params)
    experiment_obj = conn.call(
        "experiment lookup", lambda: conn.client.create_experiment(name=experiment, namespace=conn.namespace)
    )
    name = name or f"{pipeline_name} schedule"
    existing = [s for s in _recurring_runs(conn, experiment_obj.experiment_id) if s.display_name == name]
    if existing and not replace:
        raise OrchestrationError(
            f"a recurring run named {name!r} already exists "
            f"({existing[0].recurring_run_id}); pass --replace to swap it for this "
            "version, or --name for a second schedule"
        )
    report(
        f"creating recurring run {name!r}: {cron or f'every {interval_s}s'}, version "
        f"{chosen.display_name!r}, max concurrency {max_concurrency}, catch-up {'on' if catchup else 'off'}"
    )
    created = conn.call(
        "recurring run creation",
        lambda: conn.client.create_recurring_run(
            experiment_id=experiment_obj.experiment_id,
            job_name=name,
            description=f"{pipeline_name} {chosen.display_name}, created by kfp-cicd",
            start_time=start_time,
            end_time=end_time,
            interval_second=interval_s,
            cron_expression=cron,
            max_concurrency=max_concurrency,
            no_catchup=not catchup,
            params=values,
            pipeline_id=pipeline.pipeline_id,
            version_id=chosen.pipeline_version_id,
            enabled=True,
            pipeline_root=pipeline_root,
            service_account=service_account,
        ),
    )
    for old in existing:
        report(f"deleting the replaced recurring run {old.recurring_run_id}")
        delete_schedule(conn, old.recurring_run_id)
    return _schedule_result(conn, created)


def list_schedules(conn: KfpConnection, experiment: str | None = None) -> list[ScheduleResult]:
    """Recurring runs of an experiment, or of the namespace."""
    experiment_id = None
    if experiment:
        experiment_id = conn.call(
            "experiment lookup",
            lambda: conn.client.get_experiment(experiment_name=experiment, namespace=conn.namespace),
        ).experiment_id
    return [_schedule_result(conn, s) for s in _recurring_runs(conn, experiment_id)]


def set_schedule_enabled(conn: KfpConnection, recurring_run_id: str, enabled: bool) -> ScheduleResult:
    """Enable or disable a recurring run; returns its state as the server reports it afterwards."""
    if enabled:
        conn.call("enabling the recurring run", lambda: conn.client.enable_recurring_run(recurring_run_id))
    else:
        conn.call("disabling the recurring run", lambda: conn.client.disable_recurring_run(recurring_run_id))
    return _schedule_result(
        conn, conn.call("recurring run lookup", lambda: conn.client.get_recurring_run(recurring_run_id))
    )


def delete_schedule(conn: KfpConnection, recurring_run_id: str) -> None:
    """Delete a recurring run (runs it already started are kept)."""
    conn.call("deleting the recurring run", lambda: conn.client.delete_recurring_run(recurring_run_id))


def _upload_version(
    conn: KfpConnection, pipeline: CompiledPipeline, pipeline_id: str, version: str, revision: str
) -> kfp_server_api.V2beta1PipelineVersion:
    description = f"code revision {revision}; spec sha256 {pipeline.sha256[:16]}"
    return conn.call(
        "version upload",
        lambda: conn.client.upload_pipeline_version(
            str(pipeline.path),
            pipeline_version_name=version,
            pipeline_id=pipeline_id,
            description=description,
        ),
    )


def _version_with_token(
    conn: KfpConnection, pipeline_id: str, token: str
) -> kfp_server_api.V2beta1PipelineVersion | None:
    for version in pipeline_versions(conn, pipeline_id):
        if (version.display_name or "").endswith(token) or token in (version.description or ""):
            return version
    return None


def _upload_result(
    conn: KfpConnection,
    pipeline: CompiledPipeline,
    name: str,
    pipeline_id: str,
    version: kfp_server_api.V2beta1PipelineVersion,
    status: str,
) -> UploadResult:
    return UploadResult(
        spec=str(pipeline.path),
        pipeline=name,
        pipeline_id=pipeline_id,
        version=version.display_name,
        version_id=version.pipeline_version_id,
        status=status,
        link=conn.ui_link(f"/pipelines/details/{pipeline_id}/version/{version.pipeline_version_id}"),
    )


def _recurring_runs(
    conn: KfpConnection, experiment_id: str | None
) -> Iterator[kfp_server_api.V2beta1RecurringRun]:
    token = ""
    while True:
        page = conn.call(
            "recurring run listing",
            lambda t=token: conn.client.list_recurring_runs(
                page_token=t, page_size=PAGE_SIZE, experiment_id=experiment_id, namespace=conn.namespace
            ),
        )
        yield from page.recurring_runs or []
        token = page.next_page_token or ""
        if not token:
            return


def _schedule_result(conn: KfpConnection, rr: kfp_server_api.V2beta1RecurringRun) -> ScheduleResult:
    trigger = rr.trigger
    if trigger and trigger.cron_schedule and trigger.cron_schedule.cron:
        description = f"cron {trigger.cron_schedule.cron}"
    elif trigger and trigger.periodic_schedule:
        description = f"every {trigger.periodic_schedule.interval_second}s"
    else:
        description = "?"
    reference = rr.pipeline_version_reference
    return ScheduleResult(
        recurring_run_id=rr.recurring_run_id,
        name=rr.display_name or "",
        status=str(rr.status or rr.mode or ""),
        trigger=description,
        max_concurrency=int(rr.max_concurrency or 0),
        no_catchup=bool(rr.no_catchup),
        pipeline_version_id=(reference.pipeline_version_id if reference else "") or "",
        link=conn.ui_link(f"/recurringrun/details/{rr.recurring_run_id}"),
    )


def _run_error(run: kfp_server_api.V2beta1Run) -> str:
    error = run.error
    if error is None:
        return ""
    message = getattr(error, "message", None)
    return str(message or error)


def _equals_filter(key: str, value: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": key, "stringValue": value}]})


def _show(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sorted(values.items())) or "(defaults)"
