"""``kfp-cicd schema infer|show|diff|accept``: the TFDV schema lifecycle.

Schema evolution is an explicit, reviewed step: ``diff`` shows what a new data set would change in
the champion's schema (new categories, widened ranges, new or missing columns, type changes), and
``accept`` writes the evolved schema as a file, stamped with who accepted it and when, to review
and commit; ``--param schema_path=<file>`` then validates against it, and the audit record keeps the
acceptance.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kfp_cicd.components.validate_data.schema_lifecycle import SchemaDiff


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
    diff = schema.add_parser(
        "diff", help="what a new data set would change in the champion's (or a given) schema"
    )
    _reference_arguments(diff)
    diff.set_defaults(handler=_diff)
    accept = schema.add_parser(
        "accept", help="write the schema evolved to accept a new data set, for review and commit"
    )
    _reference_arguments(accept)
    accept.add_argument("--out", type=Path, required=True, help="schema file to write (.pbtxt)")
    accept.add_argument(
        "--accepted-by", default="", help="who accepts the change (default: user@host of this shell)"
    )
    accept.set_defaults(handler=_accept)


@contextlib.contextmanager
def _tfdv_output_kept_back() -> Iterator[None]:
    """Keep the TFDV job's output (TensorFlow's start-up noise, progress lines) off the console;
    print it when the command fails, so the cause is never lost."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise


def _reference_arguments(parser: argparse.ArgumentParser) -> None:
    """The new data and the reference schema: a file, or the champion of a registered model."""
    from kfp_cicd.cli.store import add_home_argument

    parser.add_argument("--data", required=True, help="the new table (CSV/Parquet; local, gs://, s3://)")
    parser.add_argument("--label-column", required=True, help="the label column")
    reference = parser.add_mutually_exclusive_group(required=True)
    reference.add_argument("--schema", help="the reference schema file (.pbtxt)")
    reference.add_argument(
        "--model-name", help="the registered model whose champion's schema is the reference"
    )
    add_home_argument(parser)
    parser.add_argument(
        "--tracking-uri", default=None, help="MLflow tracking URI (default: the store in --home)"
    )


def _reference_schema(args: argparse.Namespace, work: Path) -> tuple[str, str]:
    """``(local schema path, how to name it)`` of the reference the arguments choose."""
    from kfp_cicd.errors import DataError
    from kfp_cicd.parameter_validation import check_model_name

    if args.schema:
        if not Path(args.schema).is_file():
            raise DataError(f"--schema {args.schema} does not exist; pass a text-format TFDV schema")
        return args.schema, f"schema file {args.schema}"
    from kfp_cicd.cli.store import tracking_uri_of
    from kfp_cicd.registry.contract import download_reference, find_reference

    check_model_name(args.model_name, "--model-name")
    tracking_uri = tracking_uri_of(args)
    reference = find_reference(tracking_uri, args.model_name)
    if reference is None:
        raise DataError(
            f"{args.model_name} has no champion in {tracking_uri}, so there is no schema to compare with; "
            "a first run infers and stores one, or pass --schema FILE"
        )
    local = download_reference(reference, tracking_uri, work)
    if local.schema_path is None:
        raise DataError(
            f"{reference.describe()} stores no schema (registered before schemas were stored); "
            "pass --schema FILE, e.g. from `kfp-cicd schema infer`"
        )
    return str(local.schema_path), f"{reference.describe()}'s schema"


def _schema_diff(args: argparse.Namespace, work: Path) -> tuple[SchemaDiff, str]:
    from kfp_cicd.components.validate_data.schema_lifecycle import diff_schema
    from kfp_cicd.parameter_validation import check_table_location, require_text

    check_table_location(args.data, "--data")
    require_text(args.label_column, "--label-column")
    schema_path, shown = _reference_schema(args, work)
    with _tfdv_output_kept_back():
        return diff_schema(schema_path, args.data, label_column=args.label_column), shown


def _print_changes(diff: SchemaDiff, shown: str, data: str) -> None:
    if not diff.changes:
        print(f"{data} needs no change to {shown}")
        return
    print(f"{data} would change {shown} in {len(diff.changes)} place{'s' if len(diff.changes) > 1 else ''}:")
    rows = [("feature", "change", "detail")] + [(c.feature, c.kind, c.detail) for c in diff.changes]
    widths = [max(len(str(row[i])) for row in rows) for i in range(2)]
    for feature, kind, detail in rows:
        print(f"  {str(feature).ljust(widths[0])}  {str(kind).ljust(widths[1])}  {detail}".rstrip())


def _diff(args: argparse.Namespace) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kfp-cicd-schema-") as work:
        diff, shown = _schema_diff(args, Path(work))
    _print_changes(diff, shown, args.data)
    if diff.changes:
        print("To accept them: kfp-cicd schema accept (same arguments) --out schema.pbtxt, review, commit.")
    return 0


def _accept(args: argparse.Namespace) -> int:
    import getpass
    import socket
    import tempfile
    from datetime import UTC, datetime

    from kfp_cicd.components.validate_data.schema_lifecycle import write_accepted_schema

    with tempfile.TemporaryDirectory(prefix="kfp-cicd-schema-") as work:
        diff, shown = _schema_diff(args, Path(work))
    _print_changes(diff, shown, args.data)
    accepted_by = args.accepted_by or f"{getpass.getuser()}@{socket.gethostname()}"
    path = write_accepted_schema(
        diff.evolved_schema_text,
        args.out,
        accepted_by=accepted_by,
        accepted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        based_on=shown,
        data=args.data,
    )
    print(f"schema: {path} (accepted by {accepted_by})")
    print(f"Review and commit it, then run with --param schema_path={path}")
    return 0


def _infer(args: argparse.Namespace) -> int:
    from kfp_cicd.components.validate_data.schema_lifecycle import infer_schema
    from kfp_cicd.parameter_validation import check_table_location, require_text

    check_table_location(args.data, "--data")
    require_text(args.label_column, "--label-column")
    with _tfdv_output_kept_back():
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
