"""``kfp-cicd monitor``: the monitoring pipeline on this machine through kfp.local.

Checks a window of production data (``--data dayK.csv``) for drift against the champion's
training statistics; when it drifted, the nested training pipeline retrains on ``--train-data``/
``--eval-data`` (default: a split of the window itself, which carries delayed labels), and the
new version is tagged with the trigger.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kfp_cicd.cli.run import add_console_arguments
from kfp_cicd.cli.store import add_home_argument, home_of
from kfp_cicd.errors import DataError, KfpCicdError

if TYPE_CHECKING:
    from kfp_cicd.local_run import LocalRunResult

MONITOR_ONLY = ("production_data", "train_data", "eval_data", "mlflow_tracking_uri")


def register(commands: argparse._SubParsersAction) -> None:
    monitor = commands.add_parser("monitor", help="check production data for drift; retrain when it drifted")
    monitor.add_argument("--data", required=True, help="a window of production data (CSV/Parquet)")
    monitor.add_argument(
        "--train-data",
        help="labelled data to retrain on (with --eval-data; default: "
        "a split of --data, which must then carry the label)",
    )
    monitor.add_argument("--eval-data", help="labelled holdout data for the retrained model's gate")
    monitor.add_argument("--seed", type=int, default=0, help="seed of the split of --data")
    add_home_argument(monitor)
    monitor.add_argument("--tracking-uri", help="MLflow tracking URI (default: SQLite store in --home)")
    monitor.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="monitoring pipeline parameter, e.g. --param drift_default_threshold=0.2 --param epochs=4",
    )
    add_console_arguments(monitor)
    monitor.set_defaults(handler=_monitor)


def parse_params(pairs: list[str]) -> dict:
    """``key=value`` pairs, typed as the monitoring pipeline declares them."""
    from kfp_cicd.cli.params import parse_pipeline_params
    from kfp_cicd.pipelines.monitoring_pipeline import build_monitoring_pipeline

    return parse_pipeline_params(pairs, build_monitoring_pipeline(), reserved=MONITOR_ONLY)


def _check_window_has_label(data: str, label: str) -> None:
    """Retraining on a split of the window needs its labels: say so before anything runs."""
    from kfp_cicd.data.tables import read_table

    if label not in read_table(data).columns:
        raise DataError(
            f"{data} has no label column {label!r}, so it cannot be split into data to "
            "retrain on: give labelled --train-data and --eval-data as well"
        )


def _monitor(args: argparse.Namespace) -> int:
    from kfp_cicd.cli.params import check_data_options
    from kfp_cicd.cli.run import open_page, quiet_console_logging, show_run
    from kfp_cicd.console import display_for
    from kfp_cicd.local_run import LocalRunRequest, required_label, run_locally
    from kfp_cicd.pipelines.monitoring_pipeline import build_monitoring_pipeline
    from kfp_cicd.pipelines.training_pipeline import Target

    check_data_options(args)
    quiet_console_logging(args)
    if bool(args.train_data) != bool(args.eval_data):
        raise KfpCicdError("give both --train-data and --eval-data, or neither (to split --data)")
    params = parse_params(args.param)
    request = LocalRunRequest(
        home=home_of(args),
        data=None if args.train_data else args.data,
        train_data=args.train_data,
        eval_data=args.eval_data,
        seed=args.seed,
        tracking_uri=args.tracking_uri,
        pipeline_arguments=params,
    )
    label = required_label(request)
    if not args.train_data:
        _check_window_has_label(args.data, label)
    display, console = display_for(sys.stdout, args.verbose, "kfp-cicd-monitoring (local, kfp.local)")
    result = run_locally(
        request,
        build_monitoring_pipeline(target=Target.LOCAL),
        {"production_data": str(Path(args.data).resolve())},
        display=display,
    )
    code = show_run(result, console, format_monitoring_summary(result))
    if args.open:
        open_page(result.page)
    return code


def format_monitoring_summary(result: LocalRunResult) -> str:
    """The verdict and the drift report's location; the training summary when it retrained."""
    from kfp_cicd.run_summary import format_summary

    verdict = result.tasks.get("monitoring-verdict")
    check = result.tasks.get("check-drift")
    lines = [
        f"kfp-cicd monitoring run: {'SUCCEEDED' if result.succeeded else 'FAILED'}",
        f"  run directory:   {result.run_dir}",
        f"  MLflow store:    {result.tracking_uri}",
    ]
    if verdict is not None:
        lines.append(f"verdict:    {verdict.parameters.get('Output', '?')}")
    if check is not None:
        for name in ("drift_report", "drift_view", "statistics_view"):
            if name in check.artifacts:
                lines.append(f"  {name + ':':16} {check.artifacts[name]['uri']}")
    record = result.tasks.get("record-retraining-trigger")
    if record is not None:
        lines.append(f"lineage:    {record.parameters.get('Output', '')}")
    if "validate-data" in result.tasks:
        lines += ["", "retraining (nested training pipeline):", format_summary(result, artifacts=False)]
    return "\n".join(lines)
