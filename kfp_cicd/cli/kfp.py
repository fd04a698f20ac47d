"""``kfp-cicd upload | submit | schedule``: ship compiled pipelines to a Kubeflow Pipelines cluster."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from kfp_cicd.cli.submit_options import add_submit_options
from kfp_cicd.orchestration.outcome import EXIT_CODES_HELP, run_command

AUTH_HELP = """authentication (first that applies): --token or $KFP_CICD_KFP_TOKEN (bearer token; prefer the
variable, flags show up in process lists) > --token-file or the in-cluster service-account token
(/var/run/secrets/kubeflow/pipelines/token) > kube context (no --host, or --kube-context) > none."""

UPLOAD_EXAMPLES = """examples:
  kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80 &
  kfp-cicd upload --host http://localhost:8080
  KFP_CICD_KFP_TOKEN=$TOKEN kfp-cicd upload --host https://kubeflow.example.com/pipeline \\
      --namespace team-fraud --semver 1.4.0 --output json

The first upload creates the pipeline; later ones add a version named from the code revision
(<semver>-<commit> or rev-<commit>). Uploading a revision that is already there does nothing.
"""

SUBMIT_EXAMPLES = """examples:
  kfp-cicd submit --host http://localhost:8080 --pipeline kfp-cicd-training \\
      --param train_data=s3://data/train.csv --param eval_data=s3://data/eval.csv \\
      --param mlflow_tracking_uri=http://mlflow.mlflow:5000 --param epochs=10 --wait

Parameters are typed as the pipeline version declares them (epochs=10 is sent as the integer 10).
--wait follows the run and exits 1 if it fails.
"""

SCHEDULE_EXAMPLES = """examples:
  kfp-cicd schedule --host H --pipeline kfp-cicd-training --cron "0 3 * * *" --param …   # create
  kfp-cicd schedule --host H --pipeline kfp-cicd-training --every 24h --replace --param …
  kfp-cicd schedule list --host H
  kfp-cicd schedule disable RECURRING_RUN_ID --host H
  kfp-cicd schedule enable RECURRING_RUN_ID --host H
  kfp-cicd schedule delete RECURRING_RUN_ID --host H

New recurring runs are enabled, run at most one at a time (--max-concurrency) and do not catch up
on missed intervals (--catchup to backfill). 5-field cron expressions get a leading seconds field
for KFP's scheduler.
"""


def register(commands: argparse._SubParsersAction) -> None:
    _register_upload(commands)
    _register_submit(commands)
    _register_schedule(commands)


def _parser(
    commands: argparse._SubParsersAction, name: str, summary: str, examples: str
) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"{examples}\n{AUTH_HELP}\n\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    connection = parser.add_argument_group("connection")
    connection.add_argument(
        "--host",
        help="KFP API URL (default: $KFP_CICD_KFP_HOST, $KF_PIPELINES_ENDPOINT, else the kube context)",
    )
    connection.add_argument("--namespace", help="profile namespace on multi-user Kubeflow")
    connection.add_argument("--token", help="bearer token (prefer $KFP_CICD_KFP_TOKEN)")
    connection.add_argument("--token-file", help="file holding a bearer token (re-read on every request)")
    connection.add_argument("--kube-context", help="reach KFP through this kubeconfig context")
    connection.add_argument("--ui-host", help="base URL of the KFP UI for printed links (default: --host)")
    connection.add_argument("--ssl-ca-cert", help="CA bundle for a private TLS certificate")
    parser.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="result format on stdout (progress always goes to stderr)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipeline", required=True, help="pipeline name in KFP (e.g. kfp-cicd-training)")
    parser.add_argument("--version", help="version name or id (default: the newest)")
    parser.add_argument("--experiment", default="Default", help="experiment (created if missing)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pipeline parameter, typed as the spec declares (repeatable)",
    )
    parser.add_argument("--pipeline-root", help="override the pipeline root (object store URI)")
    parser.add_argument("--service-account", help="Kubernetes service account the run's pods use")


def _register_upload(commands: argparse._SubParsersAction) -> None:
    parser = _parser(
        commands,
        "upload",
        "upload compiled pipelines to Kubeflow Pipelines (new version per code revision)",
        UPLOAD_EXAMPLES,
    )
    parser.add_argument(
        "--spec",
        action="append",
        type=Path,
        default=[],
        help="compiled spec to upload (repeatable; default: every <compiled-dir>/kubeflow/*.yaml)",
    )
    parser.add_argument("--compiled-dir", type=Path, default=Path("compiled"))
    parser.add_argument("--semver", help="semantic version to put in the version name (e.g. 1.4.0)")
    parser.add_argument("--revision", help="code revision (default: git HEAD, or $KFP_CICD_CODE_REVISION)")
    parser.add_argument(
        "--pipeline-name",
        help="pipeline name in KFP (default: the spec's pipelineInfo.name; only with one spec)",
    )
    parser.set_defaults(handler=_upload)


def _register_submit(commands: argparse._SubParsersAction) -> None:
    parser = _parser(
        commands, "submit", "create a run of an uploaded pipeline on Kubeflow Pipelines", SUBMIT_EXAMPLES
    )
    _add_run_options(parser)
    parser.add_argument("--run-name", help="run name (default: pipeline, version and time)")
    add_submit_options(parser, what="run", poll_seconds=10.0)
    parser.set_defaults(handler=_submit)


def _register_schedule(commands: argparse._SubParsersAction) -> None:
    parser = _parser(
        commands,
        "schedule",
        "create, list, enable, disable or delete recurring runs on Kubeflow Pipelines",
        SCHEDULE_EXAMPLES,
    )
    parser.add_argument(
        "action", nargs="?", default="create", choices=("create", "list", "enable", "disable", "delete")
    )
    parser.add_argument("recurring_run_id", nargs="?", help="for enable/disable/delete")
    parser.add_argument("--pipeline", help="pipeline name in KFP (create)")
    parser.add_argument("--version", help="version name or id (default: the newest)")
    parser.add_argument(
        "--experiment", default=None, help="experiment (create: default 'Default'; list: filter)"
    )
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    cadence = parser.add_mutually_exclusive_group()
    cadence.add_argument(
        "--cron", help="cron expression, 5 fields (min hour day month weekday) or 6 (seconds first)"
    )
    cadence.add_argument("--every", help="interval: 30m, 6h, 1d")
    parser.add_argument("--name", help="recurring run name (default: '<pipeline> schedule')")
    parser.add_argument("--max-concurrency", type=int, default=1)
    parser.add_argument("--catchup", action="store_true", help="backfill intervals missed while disabled")
    parser.add_argument("--start", help="RFC 3339 start time")
    parser.add_argument("--end", help="RFC 3339 end time")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="swap an existing recurring run of the same name (new one first, then delete)",
    )
    parser.add_argument("--pipeline-root", help="override the pipeline root")
    parser.add_argument("--service-account", help="Kubernetes service account the runs' pods use")
    parser.set_defaults(handler=_schedule)


def _check_connection(args: argparse.Namespace) -> None:
    """Refuse a malformed host, UI host or namespace before anything is contacted."""
    from kfp_cicd.parameter_validation import check_dns_label, check_server_url, require_text

    if args.host:
        check_server_url(args.host, "--host")
    if args.ui_host:
        check_server_url(args.ui_host, "--ui-host")
    if args.namespace:
        check_dns_label(args.namespace, "--namespace")
    if args.kube_context:
        require_text(args.kube_context, "--kube-context")


def _check_run_options(args: argparse.Namespace) -> None:
    """The run/schedule options that name things or places, checked before connecting."""
    from kfp_cicd.orchestration.parameters import precheck_assignments
    from kfp_cicd.parameter_validation import check_dns_subdomain, check_pipeline_root, require_text

    precheck_assignments(args.param)
    if args.pipeline:
        require_text(args.pipeline, "--pipeline", max_length=256)
    names = (
        ("--version", args.version),
        ("--experiment", args.experiment),
        ("--run-name", getattr(args, "run_name", None)),
        ("--name", getattr(args, "name", None)),
    )
    for flag, value in names:
        if value is not None:
            require_text(value, flag, max_length=256)
    if args.pipeline_root:
        check_pipeline_root(args.pipeline_root)
    if args.service_account:
        check_dns_subdomain(args.service_account, "--service-account")


def _connect(args: argparse.Namespace) -> Any:
    from kfp_cicd.orchestration.auth import resolve_auth
    from kfp_cicd.orchestration.kfp_connection import KfpConnection

    _check_connection(args)
    auth = resolve_auth(
        args.host, token=args.token, token_file=args.token_file, kube_context=args.kube_context
    )
    _progress(args)(f"connecting: {auth.describe()}")
    return KfpConnection(auth, namespace=args.namespace, ui_host=args.ui_host, ssl_ca_cert=args.ssl_ca_cert)


def _progress(args: argparse.Namespace) -> Any:
    from kfp_cicd.orchestration.progress import Progress

    return Progress(quiet=args.quiet)


def _upload(args: argparse.Namespace) -> int:
    def action() -> list[Any]:
        from kfp_cicd.orchestration import kfp_pipelines
        from kfp_cicd.orchestration.errors import ParameterError
        from kfp_cicd.orchestration.spec import load_compiled_pipeline
        from kfp_cicd.parameter_validation import require_text
        from kfp_cicd.provenance import code_revision

        specs = args.spec or sorted((args.compiled_dir / "kubeflow").glob("*.yaml"))
        if not specs:
            raise ParameterError(
                f"no compiled specs under {args.compiled_dir}/kubeflow; run `kfp-cicd compile`"
            )
        if args.pipeline_name and len(specs) > 1:
            raise ParameterError("--pipeline-name needs exactly one --spec")
        pipelines = [load_compiled_pipeline(path) for path in specs]
        if args.pipeline_name:
            require_text(args.pipeline_name, "--pipeline-name", max_length=256)
        revision = args.revision or os.environ.get("KFP_CICD_CODE_REVISION") or code_revision()
        conn = _connect(args)
        report = _progress(args)
        return [
            kfp_pipelines.upload(
                conn, p, revision, report, semver=args.semver, pipeline_name=args.pipeline_name
            )
            for p in pipelines
        ]

    return run_command(action, args.output, _render_uploads)


def _submit(args: argparse.Namespace) -> int:
    def action() -> Any:
        from kfp_cicd.orchestration import kfp_pipelines

        _check_run_options(args)
        conn = _connect(args)
        report = _progress(args)
        run = kfp_pipelines.submit(
            conn,
            args.pipeline,
            args.param,
            report,
            version=args.version,
            experiment=args.experiment,
            run_name=args.run_name,
            pipeline_root=args.pipeline_root,
            service_account=args.service_account,
            enable_caching=args.enable_caching,
        )
        if args.wait:
            run = kfp_pipelines.wait_for_run(
                conn, run, report, timeout_s=args.timeout, poll_s=args.poll_interval
            )
        return run

    return run_command(action, args.output, lambda run: f"run {run.run_id} {run.state}: {run.link}")


def _schedule(args: argparse.Namespace) -> int:
    def action() -> Any:
        from kfp_cicd.orchestration import kfp_pipelines
        from kfp_cicd.orchestration.cadence import interval_seconds, kfp_cron
        from kfp_cicd.orchestration.errors import ParameterError
        from kfp_cicd.parameter_validation import check_timestamp, require_text

        if args.action in ("enable", "disable", "delete") and not args.recurring_run_id:
            raise ParameterError(f"`schedule {args.action}` needs the recurring run id (see `schedule list`)")
        if args.action == "create":
            if not args.pipeline or not (args.cron or args.every):
                raise ParameterError("creating a schedule needs --pipeline and --cron or --every")
            cron = kfp_cron(args.cron) if args.cron else None
            interval = interval_seconds(args.every) if args.every else None
            _check_run_options(args)
            for flag, value in (("--start", args.start), ("--end", args.end)):
                if value:
                    check_timestamp(value, flag)
        elif args.recurring_run_id:
            require_text(args.recurring_run_id, "recurring run id", max_length=256)
        conn = _connect(args)
        if args.action == "list":
            return kfp_pipelines.list_schedules(conn, args.experiment)
        if args.action in ("enable", "disable"):
            return kfp_pipelines.set_schedule_enabled(conn, args.recurring_run_id, args.action == "enable")
        if args.action == "delete":
            kfp_pipelines.delete_schedule(conn, args.recurring_run_id)
            return {"deleted": args.recurring_run_id}
        return kfp_pipelines.create_schedule(
            conn,
            args.pipeline,
            args.param,
            _progress(args),
            cron=cron,
            interval_s=interval,
            version=args.version,
            experiment=args.experiment or "Default",
            name=args.name,
            max_concurrency=args.max_concurrency,
            catchup=args.catchup,
            start_time=args.start,
            end_time=args.end,
            replace=args.replace,
            pipeline_root=args.pipeline_root,
            service_account=args.service_account,
        )

    return run_command(action, args.output, _render_schedules)


def _render_uploads(results: list[Any]) -> str:
    verbs = {"created": "created pipeline", "new-version": "new version of", "unchanged": "unchanged:"}
    return "\n".join(
        f"{verbs[r.status]} {r.pipeline} version {r.version} ({r.version_id}): {r.link}" for r in results
    )


def _render_schedules(result: Any) -> str:
    if isinstance(result, dict):
        return f"deleted recurring run {result['deleted']}"
    schedules = result if isinstance(result, list) else [result]
    if not schedules:
        return "no recurring runs"
    return "\n".join(
        f"{s.recurring_run_id}  {s.status:8}  {s.trigger}  max-concurrency {s.max_concurrency}  "
        f"{'no catch-up' if s.no_catchup else 'catch-up'}  {s.name}"
        for s in schedules
    )
