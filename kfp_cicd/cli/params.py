"""``--param KEY=VALUE`` pairs typed as a pipeline declares its inputs (never all strings)."""

from __future__ import annotations

from collections.abc import Collection

from kfp.dsl.graph_component import GraphComponent

from kfp_cicd.errors import KfpCicdError

_CASTS = {"Integer": int, "Float": float, "Boolean": lambda v: v.lower() in ("1", "true", "yes")}


def parse_pipeline_params(pairs: list[str], pipeline: GraphComponent,
                          reserved: Collection[str] = ()) -> dict:
    """Parse ``KEY=VALUE`` pairs into the types ``pipeline`` declares; ``reserved`` keys are refused."""
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
    return parsed
