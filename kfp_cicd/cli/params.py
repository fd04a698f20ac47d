"""``--param KEY=VALUE`` pairs typed as a pipeline declares its inputs (never all strings), and the
data options the local-run commands share, checked before anything runs."""

from __future__ import annotations

import argparse
from collections.abc import Collection

from kfp.dsl.graph_component import GraphComponent

from kfp_cicd.errors import KfpCicdError
from kfp_cicd.parameter_validation import check_pipeline_arguments, check_table_location, check_tracking_uri

_CASTS = {"Integer": int, "Float": float, "Boolean": lambda v: v.lower() in ("1", "true", "yes")}


def parse_pipeline_params(pairs: list[str], pipeline: GraphComponent,
                          reserved: Collection[str] = ()) -> dict:
    """Parse ``KEY=VALUE`` pairs into the types ``pipeline`` declares; ``reserved`` keys are refused.

    Values with a rule (URIs, names, percentages: :mod:`kfp_cicd.parameter_validation`) are
    checked too, so a bad one fails before the run starts.
    """
    declared = {name: spec for name, spec in (pipeline.component_spec.inputs or {}).items()
                if name not in reserved}
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in declared:
            raise KfpCicdError(f"bad --param {pair!r}: expected KEY=VALUE with KEY one of {sorted(declared)}")
        try:
            parsed[key] = _CASTS.get(declared[key].type, str)(value)
        except ValueError as exc:
            raise KfpCicdError(f"bad --param {pair!r}: {key} is {declared[key].type}") from exc
    return check_pipeline_arguments(parsed)


def check_data_options(args: argparse.Namespace) -> None:
    """The table locations and tracking URI of ``run``/``monitor``, checked before anything runs."""
    for flag in ("data", "train_data", "eval_data"):
        if getattr(args, flag, None) is not None:
            check_table_location(getattr(args, flag), f"--{flag.replace('_', '-')}")
    if args.tracking_uri is not None:
        check_tracking_uri(args.tracking_uri, "--tracking-uri")
