"""Type ``--param key=value`` strings as the compiled spec declares each parameter.

The kfp CLI sends recurring-run parameters as strings, which the backend then rejects or
mis-reads for integer, float and boolean inputs. Here every value is converted to the JSON type
of its ``parameterType`` and checked against its rule (:mod:`kfp_cicd.parameter_validation`) before
it reaches the API, and mistakes are reported all at once.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Collection, Iterable
from typing import Any

from kfp_cicd.orchestration.errors import ParameterError
from kfp_cicd.orchestration.spec import CompiledPipeline, ParameterDefinition
from kfp_cicd.parameter_validation import parameter_problems
from kfp_cicd.pipelines.parameters import RULES

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """Split ``key=value`` strings; a repeated key or a missing ``=`` is an error."""
    values: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"--param {item!r} is not key=value (example: --param epochs=5)")
        if key in values:
            raise ParameterError(f"--param {key} is given twice; pass each parameter once")
        values[key] = value
    return values


def unknown_parameter_message(key: str, known: Collection[str]) -> str:
    """``unknown parameter 'epoch'; did you mean 'epochs'?`` (the closest names, not all of them)."""
    close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
    hint = (
        f"did you mean {' or '.join(repr(name) for name in close)}?"
        if close
        else "see the pipeline's parameters with --help or in the README"
    )
    return f"unknown parameter {key!r}; {hint}"


def typed_parameters(
    pipeline: CompiledPipeline, assignments: Iterable[str], require_all: bool = True
) -> dict[str, Any]:
    """Parameter values converted to the types the spec declares.

    Args:
        pipeline: The compiled spec whose ``root.inputDefinitions.parameters`` define names and types.
        assignments: ``key=value`` strings from the command line.
        require_all: Also fail when a parameter without default is not given (runs need them all).

    Raises:
        ParameterError: Listing every unknown name, unparsable value, value that breaks its rule
            (URIs, names, percentages: :data:`kfp_cicd.pipelines.parameters.RULES`)
            and missing required parameter.
    """
    raw = parse_assignments(assignments)
    problems: list[str] = []
    typed: dict[str, Any] = {}
    for key, text in raw.items():
        definition = pipeline.parameters.get(key)
        if definition is None:
            problems.append(f"{pipeline.name}: {unknown_parameter_message(key, pipeline.parameters)}")
            continue
        try:
            typed[key] = convert(definition, text)
        except ValueError as exc:
            problems.append(str(exc))
    problems.extend(parameter_problems(typed, RULES))
    if require_all:
        missing = [name for name in pipeline.required_parameters() if name not in typed]
        problems.extend(
            f"missing required parameter {name!r} ({pipeline.parameters[name].description}); "
            f"pass --param {name}=…"
            for name in missing
        )
    if problems:
        raise ParameterError("invalid pipeline parameters:\n  " + "\n  ".join(problems))
    return typed


def precheck_assignments(assignments: Iterable[str]) -> None:
    """Check ``key=value`` strings that have a rule before any service is contacted.

    Typing needs the spec (which for KFP lives on the server), but a bad URI, name or percentage
    is wrong whatever the spec says: refuse it before connecting.
    """
    problems = parameter_problems(parse_assignments(assignments), RULES)
    if problems:
        raise ParameterError("invalid pipeline parameters:\n  " + "\n  ".join(problems))


def convert(definition: ParameterDefinition, text: str) -> Any:
    """One value as the JSON type of ``definition.parameter_type`` (ValueError naming the parameter)."""
    kind = definition.parameter_type
    name = definition.name
    if kind == "STRING":
        return text
    if kind == "NUMBER_INTEGER":
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"{name} is an integer parameter; got {text!r}") from None
    if kind == "NUMBER_DOUBLE":
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(f"{name} is a float parameter; got {text!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number; got {text!r}")
        return value
    if kind == "BOOLEAN":
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{name} is a boolean parameter; got {text!r} (use true or false)")
    return _json_value(name, kind, text)


def _json_value(name: str, kind: str, text: str) -> Any:
    expected = list if kind == "LIST" else dict
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, expected):
        example = '\'["a", "b"]\'' if kind == "LIST" else "'{\"key\": 1}'"
        raise ValueError(
            f"{name} is a {kind} parameter; give JSON, e.g. --param {name}={example}; got {text!r}"
        )
    return value
