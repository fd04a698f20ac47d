"""``kfp-cicd run``: the training pipeline on this machine through kfp.local."""

from __future__ import annotations

import argparse

from kfp_cicd.cli.store import add_home_argument, home_of


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
    run.set_defaults(handler=_run)


def _parse_params(pairs: list[str]) -> dict:
    from kfp_cicd.cli.params import parse_pipeline_params
    from kfp_cicd.pipelines.training_pipeline import build_training_pipeline

    return parse_pipeline_params(pairs, build_training_pipeline())


def _run(args: argparse.Namespace) -> int:
    from kfp_cicd.cli.params import check_data_options
    from kfp_cicd.errors import KfpCicdError
    from kfp_cicd.local_run import LocalRunRequest, run_locally
    from kfp_cicd.run_summary import format_summary

    check_data_options(args)
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
    result = run_locally(request)
    print(format_summary(result))
    return 0 if result.succeeded else 1
