"""``--param KEY=VALUE`` pairs typed as a pipeline declares its inputs (never all strings), and the
data options the local-run commands share, checked before anything runs."""

from __future__ import annotations

import argparse
from collections.abc import Collection

from kfp.dsl.graph_component import GraphComponent

from kfp_cicd.errors import KfpCicdError
from kfp_cicd.orchestration.parameters import convert, parse_assignments, unknown_parameter_message
from kfp_cicd.orchestration.spec import ParameterDefinition
from kfp_cicd.parameter_validation import check_table_location, check_tracking_uri, parameter_problems
from kfp_cicd.pipelines.parameters import RULES

#: kfp's Python-side input types as the compiled spec's parameter types.
_SPEC_TYPES = {
    "String": "STRING",
    "Integer": "NUMBER_INTEGER",
    "Float": "NUMBER_DOUBLE",
    "Boolean": "BOOLEAN",
}


def parse_pipeline_params(pairs: list[str], pipeline: GraphComponent, reserved: Collection[str] = ()) -> dict:
    """Parse ``KEY=VALUE`` pairs into the types ``pipeline`` declares; ``reserved`` keys are refused.

    Strict, like ``submit``: a repeated key, an unknown key or a value of the wrong type is an
    error, and values with a rule (:data:`kfp_cicd.pipelines.parameters.RULES`) are checked too,
    so a bad one fails before the run starts. Every problem is reported at once.
    """
    declared = {
        name: spec for name, spec in (pipeline.component_spec.inputs or {}).items() if name not in reserved
    }
    try:
        raw = parse_assignments(pairs)
    except ValueError as exc:
        raise KfpCicdError(str(exc)) from exc
    parsed, problems = {}, []
    for key, text in raw.items():
        if key in reserved:
            problems.append(f"{key} is set by the command's options (e.g. --data), not with --param")
            continue
        if key not in declared:
            problems.append(unknown_parameter_message(key, declared))
            continue
        kind = _SPEC_TYPES.get(declared[key].type, "STRING")
        definition = ParameterDefinition(name=key, parameter_type=kind)
        try:
            parsed[key] = convert(definition, text)
        except ValueError as exc:
            problems.append(str(exc))
    problems += parameter_problems(parsed, RULES)
    if problems:
        raise KfpCicdError("invalid --param values:\n  " + "\n  ".join(problems))
    return parsed


def check_data_options(args: argparse.Namespace) -> None:
    """The table locations and tracking URI of ``run``/``monitor``, checked before anything runs."""
    for flag in ("data", "train_data", "eval_data"):
        if getattr(args, flag, None) is not None:
            check_table_location(getattr(args, flag), f"--{flag.replace('_', '-')}")
    if args.tracking_uri is not None:
        check_tracking_uri(args.tracking_uri, "--tracking-uri")
