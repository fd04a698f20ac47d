"""``kfp-cicd data generate``: the synthetic card-fraud data set, and later days of production data.

``--days N`` also writes ``day1.csv`` … ``dayN.csv``: windows of production data that
``kfp-cicd monitor --data dayK.csv`` checks for drift. ``--drift X`` shifts each later day by X
more (amounts, online share, fraud rate; day 1 matches the training data).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="data sets").add_subparsers(dest="data_command", required=True)
    generate = data.add_parser("generate", help="write the synthetic card-fraud data set")
    generate.add_argument("--rows", type=int, default=20_000)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--out-dir", type=Path, default=Path("data"))
    generate.add_argument("--format", choices=("csv", "parquet"), default="csv")
    generate.add_argument("--holdout-fraction", type=float, default=0.2)
    generate.add_argument("--fraud-rate", type=float, default=0.02)
    generate.add_argument(
        "--days", type=int, default=0, help="also write day1 … dayN: later windows of production data"
    )
    generate.add_argument(
        "--day-rows", type=int, help="rows per production day (default: a quarter of --rows)"
    )
    generate.add_argument(
        "--drift",
        type=float,
        default=0.0,
        help="shift per day after day 1 (0.1: amounts, online share and fraud rate "
        "grow 10 %% per day); 0: no drift",
    )
    generate.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    from kfp_cicd.data.synthetic import generate_dataset, generate_days
    from kfp_cicd.errors import DataError

    if args.days < 0:
        raise DataError(f"--days must be 0 or more, got {args.days}")
    if args.drift and not args.days:
        raise DataError("--drift shifts production days: give --days N as well (e.g. --days 7 --drift 0.1)")
    files = generate_dataset(
        args.out_dir,
        rows=args.rows,
        seed=args.seed,
        fmt=args.format,
        holdout_fraction=args.holdout_fraction,
        fraud_rate=args.fraud_rate,
    )
    print(f"training data: {files.train}\nholdout data:  {files.holdout}")
    if args.days:
        day_rows = args.day_rows if args.day_rows is not None else max(1, args.rows // 4)
        days = generate_days(
            args.out_dir,
            days=args.days,
            rows_per_day=day_rows,
            drift=args.drift,
            seed=args.seed,
            fmt=args.format,
            fraud_rate=args.fraud_rate,
        )
        print(
            f"production days ({day_rows} rows each, drift {args.drift:g} per day after day 1): "
            f"{days[0]} … {days[-1].name}"
        )
    return 0
