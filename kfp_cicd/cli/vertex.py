"""``kfp-cicd vertex submit | schedule``: run and schedule the Vertex spec on Vertex AI Pipelines."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from kfp_cicd.cli.submit_options import add_submit_options
from kfp_cicd.orchestration.errors import ParameterError
from kfp_cicd.orchestration.outcome import EXIT_CODES_HELP, run_command

DEFAULT_SPEC = Path("compiled/vertex/training_pipeline.yaml")
_NETWORK = re.compile(r"^projects/[0-9]+/global/networks/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")

SUBMIT_EXAMPLES = """examples:
  kfp-cicd vertex submit --project my-proj --region europe-west4 --pipeline-root gs://my-bucket/runs \\
      --service-account pipelines@my-proj.iam.gserviceaccount.com --labels team=fraud \\
      --param train_data=gs://data/train.csv --param eval_data=gs://data/eval.csv \\
      --param mlflow_tracking_uri=https://mlflow.example.com --param epochs=10 --wait

The job id is <pipeline>-<commit>-<UTC time> (readable, traceable to the code). The pipeline
root's bucket must exist (--create-bucket creates it in --region). Credentials: Application
Default Credentials (gcloud auth application-default login, GOOGLE_APPLICATION_CREDENTIALS,
workload identity federation in CI).
"""

SCHEDULE_EXAMPLES = """examples:
  kfp-cicd vertex schedule --project P --region R --pipeline-root gs://b/runs \\
      --cron "TZ=Europe/Berlin 0 3 * * *" --max-concurrent 1 --replace --param …   # create/update
  kfp-cicd vertex schedule list --project P --region R
  kfp-cicd vertex schedule pause SCHEDULE_ID --project P --region R
  kfp-cicd vertex schedule resume SCHEDULE_ID --project P --region R     # no catch-up
  kfp-cicd vertex schedule delete SCHEDULE_ID --project P --region R

--replace creates the new schedule first, then deletes the old one of the same name, so a
failed update leaves the running schedule untouched.
"""


def register(commands: argparse._SubParsersAction) -> None:
    vertex = commands.add_parser(
        "vertex",
        help="submit and schedule pipelines on Vertex AI Pipelines",
        description="Submit and schedule the Vertex compiled spec on Vertex AI Pipelines.",
    )
    actions = vertex.add_subparsers(dest="vertex_command", required=True)
    submit = _parser(actions, "submit", "submit the Vertex spec as a PipelineJob", SUBMIT_EXAMPLES)
    _add_job_options(submit)
    submit.add_argument("--job-id", help="PipelineJob id (default: <pipeline>-<commit>-<UTC time>)")
    submit.add_argument("--display-name", help="display name (default: the pipeline name)")
    add_submit_options(submit, what="job", poll_seconds=15.0)
    submit.set_defaults(handler=_submit)

    schedule = _parser(
        actions, "schedule", "create, list, pause, resume or delete PipelineJob schedules", SCHEDULE_EXAMPLES
    )
    schedule.add_argument(
        "action", nargs="?", default="create", choices=("create", "list", "pause", "resume", "delete")
    )
    schedule.add_argument("schedule_id", nargs="?", help="schedule id or resource name (pause/resume/delete)")
    _add_job_options(schedule, required=False)
    schedule.add_argument("--cron", help='5-field cron, optionally "TZ=Area/City …"')
    schedule.add_argument("--name", help="schedule display name (default: '<pipeline> schedule')")
    schedule.add_argument("--max-concurrent", type=int, default=1, help="runs at the same time (default 1)")
    schedule.add_argument("--max-runs", type=int, help="stop after this many runs")
    schedule.add_argument("--start", help="RFC 3339 time of the first possible run")
    schedule.add_argument("--end", help="RFC 3339 time after which no run starts")
    schedule.add_argument(
        "--replace",
        action="store_true",
        help="swap an existing schedule of the same name (new one first, then delete)",
    )
    schedule.set_defaults(handler=_schedule)


def _parser(
    actions: argparse._SubParsersAction, name: str, summary: str, examples: str
) -> argparse.ArgumentParser:
    parser = actions.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"{examples}\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_argument_group("Vertex AI")
    target.add_argument(
        "--project",
        default=os.environ.get("GOOGLE_CLOUD_PROJECT"),
        help="Google Cloud project (default: $GOOGLE_CLOUD_PROJECT)",
    )
    target.add_argument(
        "--region",
        default=os.environ.get("GOOGLE_CLOUD_REGION"),
        help="Vertex region, e.g. europe-west4 (default: $GOOGLE_CLOUD_REGION)",
    )
    target.add_argument(
        "--api-endpoint",
        help="regional or Private Service Connect endpoint (host[:port], or http(s)://host:port)",
    )
    target.add_argument("--api-transport", choices=("rest", "grpc"), default="rest")
    target.add_argument(
        "--anonymous",
        action="store_true",
        help="send no credentials (only for local emulators/fakes with --api-endpoint)",
    )
    parser.add_argument("--output", choices=("text", "json"), default="text")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _add_job_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument(
        "--spec", type=Path, default=DEFAULT_SPEC, help=f"Vertex compiled spec (default {DEFAULT_SPEC})"
    )
    parser.add_argument("--pipeline-root", required=required, help="gs://bucket/path for the runs' artifacts")
    parser.add_argument(
        "--create-bucket", action="store_true", help="create the pipeline root's bucket if missing"
    )
    parser.add_argument("--service-account", help="service account the job runs as")
    parser.add_argument("--network", help="VPC network to peer, projects/NUMBER/global/networks/NAME")
    parser.add_argument(
        "--labels", action="append", default=[], metavar="K=V", help="job labels (repeatable)"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pipeline parameter, typed as the spec declares (repeatable)",
    )
    parser.add_argument("--revision", help="code revision for the job id/labels (default: git HEAD)")


def _target(args: argparse.Namespace) -> Any:
    from kfp_cicd.orchestration.vertex import VertexTarget
    from kfp_cicd.parameter_validation import check_gcp_project, check_gcp_region, check_server_url

    if not args.project or not args.region:
        raise ParameterError(
            "--project and --region are required (or $GOOGLE_CLOUD_PROJECT/$GOOGLE_CLOUD_REGION)"
        )
    check_gcp_project(args.project)
    check_gcp_region(args.region)
    if args.api_endpoint:
        endpoint = args.api_endpoint if "://" in args.api_endpoint else f"https://{args.api_endpoint}"
        check_server_url(endpoint, "--api-endpoint")
    credentials = None
    if args.anonymous:
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
    target = VertexTarget(
        project=args.project,
        region=args.region,
        api_endpoint=args.api_endpoint,
        credentials=credentials,
        api_transport=args.api_transport,
    )
    target.init()
    return target


def _check_job_options(args: argparse.Namespace) -> None:
    """The job options that name things or places, checked before Vertex is contacted."""
    from kfp_cicd.orchestration.parameters import precheck_assignments
    from kfp_cicd.orchestration.vertex import bucket_of
    from kfp_cicd.parameter_validation import check_service_account_email, check_vertex_job_id, require_text

    precheck_assignments(args.param)
    if args.pipeline_root:
        bucket_of(args.pipeline_root)
    if args.service_account:
        check_service_account_email(args.service_account)
    if args.network and not _NETWORK.match(args.network):
        raise ParameterError(f"--network {args.network!r} is not projects/NUMBER/global/networks/NAME")
    if getattr(args, "job_id", None):
        check_vertex_job_id(args.job_id)
    for flag in ("display_name", "name"):
        if getattr(args, flag, None) is not None:
            require_text(getattr(args, flag), f"--{flag.replace('_', '-')}", max_length=128)


def _context(args: argparse.Namespace) -> tuple[Any, Any, str]:
    from kfp_cicd.orchestration.progress import Progress
    from kfp_cicd.orchestration.spec import load_compiled_pipeline, require_single_document
    from kfp_cicd.provenance import code_revision

    revision = args.revision or os.environ.get("KFP_CICD_CODE_REVISION") or code_revision()
    pipeline = load_compiled_pipeline(args.spec)
    require_single_document(pipeline)
    return pipeline, Progress(quiet=args.quiet), revision


def _submit(args: argparse.Namespace) -> int:
    def action() -> Any:
        from kfp_cicd.orchestration import vertex

        _check_job_options(args)
        pipeline, report, revision = _context(args)
        labels = vertex.parse_labels(args.labels)
        target = _target(args)
        job = vertex.submit(
            target,
            pipeline,
            args.param,
            args.pipeline_root,
            revision,
            report,
            service_account=args.service_account,
            network=args.network,
            labels=labels,
            display_name=args.display_name,
            job_id=args.job_id,
            enable_caching=args.enable_caching,
            create_bucket=args.create_bucket,
        )
        if args.wait:
            job = vertex.wait_for_job(target, job, report, timeout_s=args.timeout, poll_s=args.poll_interval)
        return job

    return run_command(action, args.output, lambda job: f"PipelineJob {job.job_id} {job.state}: {job.link}")


def _schedule(args: argparse.Namespace) -> int:
    def action() -> Any:
        from kfp_cicd.orchestration import vertex
        from kfp_cicd.orchestration.cadence import vertex_cron
        from kfp_cicd.parameter_validation import check_timestamp

        if args.action in ("pause", "resume", "delete"):
            if not args.schedule_id:
                raise ParameterError(f"`vertex schedule {args.action}` needs the schedule id (see `list`)")
            result = vertex.change_schedule(_target(args), args.schedule_id, args.action)
            return result if result is not None else {"deleted": args.schedule_id}
        if args.action == "list":
            return vertex.list_schedules(_target(args))
        if not args.cron or not args.pipeline_root:
            raise ParameterError("creating a Vertex schedule needs --cron and --pipeline-root")
        cron = vertex_cron(args.cron)
        _check_job_options(args)
        for flag, value in (("--start", args.start), ("--end", args.end)):
            if value:
                check_timestamp(value, flag)
        pipeline, report, revision = _context(args)
        labels = vertex.parse_labels(args.labels)
        return vertex.create_schedule(
            _target(args),
            pipeline,
            args.param,
            args.pipeline_root,
            revision,
            report,
            cron=cron,
            name=args.name,
            max_concurrent=args.max_concurrent,
            max_runs=args.max_runs,
            start_time=args.start,
            end_time=args.end,
            service_account=args.service_account,
            network=args.network,
            labels=labels,
            replace=args.replace,
            create_bucket=args.create_bucket,
        )

    return run_command(action, args.output, _render_schedules)


def _render_schedules(result: Any) -> str:
    if isinstance(result, dict):
        return f"deleted schedule {result['deleted']}"
    schedules = result if isinstance(result, list) else [result]
    if not schedules:
        return "no schedules"
    return "\n".join(
        f"{s.schedule_id}  {s.state:8}  {s.cron}  max-concurrent {s.max_concurrent_run_count}  "
        f"{s.name}  {s.link}"
        for s in schedules
    )
