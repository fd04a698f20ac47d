"""``kfp-cicd schema infer|show``: the TFDV schema lifecycle."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    schema = commands.add_parser("schema", help="TFDV schemas").add_subparsers(
        dest="schema_command", required=True
    )
    infer = schema.add_parser("infer", help="infer a schema (with TRAINING/SERVING environments)")
    infer.add_argument("--data", required=True, help="table to infer from (CSV/Parquet; local, gs://, s3://)")
    infer.add_argument("--out", type=Path, required=True, help="schema file to write (.pbtxt)")
    infer.add_argument(
        "--label-column", required=True, help="the label column (only in the TRAINING environment)"
    )
    infer.set_defaults(handler=_infer)
    show = schema.add_parser("show", help="print a schema's features and rules")
    show.add_argument(
        "schema",
        nargs="?",
        default=None,
        help="schema .pbtxt (default: the curated schema of the synthetic data)",
    )
    show.set_defaults(handler=_show)


def _infer(args: argparse.Namespace) -> int:
    from kfp_cicd.components.validate_data.schema_lifecycle import infer_schema
    from kfp_cicd.parameter_validation import check_table_location, require_text

    check_table_location(args.data, "--data")
    require_text(args.label_column, "--label-column")
    path = infer_schema(args.data, args.out, label_column=args.label_column)
    print(f"schema: {path}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from kfp_cicd.components.validate_data.schema_lifecycle import describe_schema
    from kfp_cicd.components.validate_data.validation import CURATED_SCHEMA

    rows = describe_schema(str(args.schema or CURATED_SCHEMA))
    header = ("feature", "type", "required", "domain / range", "not in")
    table = [header] + [
        (r["name"], r["type"], f"{r['required_fraction']:g}", r["domain"], r["not_in_environment"])
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0
