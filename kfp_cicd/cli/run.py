"""``kfp-cicd run``: the training pipeline on this machine through kfp.local."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from kfp_cicd.cli.store import add_home_argument, home_of

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from kfp_cicd.local_run import LocalRunResult


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the training pipeline locally through kfp.local")
    data = run.add_argument_group("data (default: generate the synthetic demo data set)")
    data.add_argument("--data", help="one labelled file to split into training and holdout data")
    data.add_argument("--train-data", help="training data file (with --eval-data)")
    data.add_argument("--eval-data", help="holdout data file (with --train-data)")
    data.add_argument("--rows", type=int, default=20_000, help="rows to generate (default 20000)")
    run.add_argument("--seed", type=int, default=0)
    add_home_argument(run)
    run.add_argument("--tracking-uri", help="MLflow tracking URI (default: SQLite store in --home)")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pipeline parameter, e.g. --param epochs=4 --param min_roc_auc=0.9",
    )
    add_console_arguments(run)
    run.set_defaults(handler=_run)


def add_console_arguments(parser: argparse.ArgumentParser) -> None:
    """``-v`` (stream every task's output) and ``--open`` (open the run's page), for run and monitor."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # keeps ``kfp-cicd -v run`` working too
        help="stream every task's output (it always goes to <run dir>/logs/<task>.log)",
    )
    parser.add_argument("--open", action="store_true", help="open the run's page (index.html) in a browser")


def show_run(result: LocalRunResult, console: Console, summary: str) -> int:
    """After the steps: the summary, the failure (last, so it ends the output), the page; the exit code."""
    from rich.text import Text

    from kfp_cicd.console import print_failure
    from kfp_cicd.run_page import write_run_page

    page = write_run_page(result)
    console.print(Text(summary))
    console.print(Text(f"page:  {page}"))
    print_failure(console, result)
    return 0 if result.succeeded else 1


def quiet_console_logging(args: argparse.Namespace) -> None:
    """Without ``-v`` the console shows the steps only: library INFO records stay off it."""
    import logging

    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)


def open_page(page: Path) -> None:
    """Open ``page`` in the user's browser (``--open``)."""
    import webbrowser

    webbrowser.open(page.as_uri())


def _parse_params(pairs: list[str]) -> dict:
    from kfp_cicd.cli.params import parse_pipeline_params
    from kfp_cicd.pipelines.training_pipeline import build_training_pipeline

    return parse_pipeline_params(pairs, build_training_pipeline())


def _run(args: argparse.Namespace) -> int:
    from kfp_cicd.cli.params import check_data_options
    from kfp_cicd.console import display_for
    from kfp_cicd.errors import KfpCicdError
    from kfp_cicd.local_run import LocalRunRequest, run_locally
    from kfp_cicd.run_summary import format_summary

    check_data_options(args)
    quiet_console_logging(args)
    if args.rows < 1:
        raise KfpCicdError(f"--rows must be at least 1, got {args.rows}")
    request = LocalRunRequest(
        home=home_of(args),
        data=args.data,
        train_data=args.train_data,
        eval_data=args.eval_data,
        rows=args.rows,
        seed=args.seed,
        tracking_uri=args.tracking_uri,
        pipeline_arguments=_parse_params(args.param),
    )
    display, console = display_for(sys.stdout, args.verbose, "kfp-cicd-training (local, kfp.local)")
    result = run_locally(request, display=display)
    code = show_run(result, console, format_summary(result, artifacts=False))
    if args.open:
        open_page(result.page)
    return code
