"""``kfp-cicd data generate``: the synthetic card-fraud data set."""

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
    generate.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    from kfp_cicd.data.synthetic import generate_dataset

    files = generate_dataset(args.out_dir, rows=args.rows, seed=args.seed, fmt=args.format,
                             holdout_fraction=args.holdout_fraction, fraud_rate=args.fraud_rate)
    print(f"training data: {files.train}\nholdout data:  {files.holdout}")
    return 0
