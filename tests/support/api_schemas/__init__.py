"""Request-body checks for the fake API servers, from the real APIs' published schemas.

- KFP v2beta1: derived at run time from the installed ``kfp_server_api`` package (the client
  ``kfp.Client`` itself uses, generated from the API server's v2beta1 swagger): each model class's
  ``openapi_types`` (field types), ``attribute_map`` (JSON names), enum classes' ``allowable_values``
  and the field descriptions in its property docstrings. Nothing is stored, so nothing needs a refresh;
  it follows the installed version (``kfp-server-api`` in ``requirements/main.lock``).
- Vertex AI v1: ``aiplatform_v1.discovery.json`` beside this file (or in ``../shared/api_schemas/``
  beside the checkout), an excerpt of the discovery document google-api-python-client vendors in its
  PyPI wheel; its ``source`` records the wheel, the path inside it, the revision and the sha256.
  ``refresh.py`` rewrites it from such a wheel.

Both are turned into JSON Schema the way the real servers parse JSON:

- KFP's gateway unmarshals with ``protojson`` and ``DiscardUnknown: false``
  (backend/src/apiserver/common/utils.go ``CustomMarshaler``), and Google's REST front end answers
  ``Invalid JSON payload received. Unknown name …``: an unknown field is refused by both;
- 64-bit integers are declared as strings; both servers accept a JSON string or number for them;
- enums are accepted by name or by number; ``null`` means "unset" (removed before the check);
- a field whose published description begins with "Required" must be present in the resource the
  client creates (the top-level body).

The generated KFP client loses three things the swagger says, kept here by field name:
:data:`KFP_PROTO_TYPES` (int64 fields read as plain ``str``; ``object`` stands for both
``google.protobuf.Struct`` and ``google.protobuf.Value``) and :data:`KFP_REQUIRED_MESSAGES` (a
"Required" description beside a ``$ref`` is dropped). ``tests/orchestration/test_fakes_are_strict.py``
checks that each entry still names a field of the installed package with the type the loss implies.

Field names are checked as the clients send them (KFP: proto names; Vertex: JSON camelCase names).
Definitions are named as the schemas name them (KFP: the model class, e.g. ``V2beta1Run``; Vertex:
the discovery id, e.g. ``GoogleCloudAiplatformV1Schedule``). When ``kfp_server_api`` cannot be
imported or the Vertex excerpt is missing, the fake's test is skipped (a fake that cannot check says so).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import re
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[3] / "shared" / "api_schemas"  # ../shared/api_schemas beside the checkout


def _stored(name: str) -> Path:
    """The excerpt here, else in ../shared/api_schemas (where fetched reference data may live instead)."""
    local = HERE / name
    return local if local.is_file() or not (SHARED / name).is_file() else SHARED / name


KFP_MODELS = "kfp_server_api.models"
KFP_ROOTS = ("V2beta1Experiment", "V2beta1Run", "V2beta1RecurringRun", "GoogleRpcStatus")
# What the generated client loses from the swagger, by (model class, field), from the proto files
# (backend/api/v2beta1/*.proto): int64 fields (typed ``str``, protojson reads a string or a number)
# and google.protobuf.Struct fields (typed ``object`` like any JSON value, but must be JSON objects).
KFP_PROTO_TYPES: dict[tuple[str, str], str] = {
    ("V2beta1RecurringRun", "max_concurrency"): "int64",
    ("V2beta1PeriodicSchedule", "interval_second"): "int64",
    ("V2beta1PipelineTaskDetail", "execution_id"): "int64",
    ("V2beta1RunDetails", "pipeline_context_id"): "int64",
    ("V2beta1RunDetails", "pipeline_run_context_id"): "int64",
    ("V2beta1ArtifactList", "artifact_ids"): "int64",
    ("V2beta1Run", "pipeline_spec"): "google.protobuf.Struct",
    ("V2beta1Run", "plugins_input"): "google.protobuf.Struct",
    ("V2beta1RecurringRun", "pipeline_spec"): "google.protobuf.Struct",
    ("V2beta1RecurringRun", "plugins_input"): "google.protobuf.Struct",
}
# Message-typed fields the swagger describes as "Required …": Swagger 2 ignores a description beside
# a ``$ref``, so the generated property docstrings of these fields are empty.
KFP_REQUIRED_MESSAGES = frozenset({("V2beta1RecurringRun", "trigger"), ("V2beta1Run", "runtime_config")})
# google.protobuf.Any: its JSON form carries the embedded message's fields beside ``@type``.
KFP_OPEN_MODELS = frozenset({"ProtobufAny"})
VERTEX_SCHEMA = _stored("aiplatform_v1.discovery.json")
_INTEGER_STRING = {"type": ["string", "integer"], "pattern": r"^-?[0-9]+$"}
_KFP_SCALARS: dict[str, dict] = {
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "int": {"type": "integer"},
    "float": {"type": ["number", "string"]},  # protojson also reads "NaN", "Infinity", "1.5"
    "datetime": {"type": "string"},
    "date": {"type": "string"},
    "object": {},
}


def load(path: Path) -> dict:
    """The stored excerpt, or a pytest skip naming what is missing (never a fake that accepts all)."""
    if not path.is_file():
        pytest.skip(
            f"{path} is missing: the fake API server cannot check request bodies against the published "
            "schema; restore it with tests/support/api_schemas/refresh.py"
        )
    return json.loads(path.read_text())


def kfp_models() -> ModuleType:
    """``kfp_server_api.models``, or a pytest skip saying the KFP fake cannot check without it."""
    try:
        return importlib.import_module(KFP_MODELS)
    except ImportError as exc:
        pytest.skip(
            f"{KFP_MODELS} cannot be imported ({exc}): the fake KFP API server cannot check request "
            "bodies against the published schema; install kfp-server-api (requirements/main.lock)"
        )


@cache
def kfp_definitions() -> dict:
    """The KFP models the fake checks, and those they reference, as JSON Schema (``#/definitions/NAME``)."""
    models = kfp_models()
    definitions: dict[str, dict] = {}
    pending = list(KFP_ROOTS)
    while pending:
        name = pending.pop()
        if name not in definitions:
            definitions[name] = _kfp_definition(getattr(models, name))
            pending += _kfp_refs(definitions[name])
    return dict(sorted(definitions.items()))


@cache
def vertex_definitions() -> dict:
    """Vertex discovery schemas as JSON Schema (discovery ``$ref: NAME`` → ``#/definitions/NAME``)."""
    schemas = copy.deepcopy(load(VERTEX_SCHEMA)["schemas"])
    return {name: _strict(node) for name, node in schemas.items()}


def kfp_errors(definition: str, body: Any) -> list[str]:
    """What the KFP API server would refuse in ``body`` as a ``definition`` (e.g. V2beta1Run)."""
    return _errors(kfp_definitions(), definition, body)


def vertex_errors(schema: str, body: Any) -> list[str]:
    """What Vertex AI would refuse in ``body`` as a ``schema`` (e.g. GoogleCloudAiplatformV1Schedule)."""
    return _errors(vertex_definitions(), schema, body)


def kfp_description(model: type, attribute: str) -> str:
    """A field's published description: its property docstring, less the generator's boilerplate."""
    lines = inspect.getdoc(getattr(model, attribute)).splitlines()[1:]  # first: "Gets the … of …"
    text = []
    for line in lines:
        if line.startswith(":"):
            break
        text.append(line.replace("# noqa: E501", "").strip())
    return " ".join(t for t in text if t)


def _errors(definitions: dict, name: str, body: Any) -> list[str]:
    import jsonschema

    schema = {**definitions[name], "definitions": definitions}
    schema["required"] = sorted(definitions[name].get("x-required", []))
    validator = jsonschema.Draft7Validator(schema)
    found = sorted(validator.iter_errors(_without_nulls(body)), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in found]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _kfp_definition(model: type) -> dict:
    """One generated model class as JSON Schema: an enum (names or numbers) or a closed object."""
    if hasattr(model, "allowable_values"):
        return {"anyOf": [{"enum": list(model.allowable_values)}, {"type": "integer"}]}
    name = model.__name__
    properties, required = {}, []
    for attribute, json_name in model.attribute_map.items():
        kind = model.openapi_types[attribute]
        properties[json_name] = _kfp_type(kind, KFP_PROTO_TYPES.get((name, attribute)))
        if (name, attribute) in KFP_REQUIRED_MESSAGES or kfp_description(model, attribute).startswith(
            "Required"
        ):
            required.append(json_name)
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": {} if name in KFP_OPEN_MODELS else False,
        "x-required": required,
    }


def _kfp_type(kind: str, proto_type: str | None = None) -> dict:
    """An ``openapi_types`` entry (``str``, ``list[X]``, ``dict(str, X)``, a model name) as JSON Schema.

    ``proto_type``: the field's type the generator lost (:data:`KFP_PROTO_TYPES`), applied to its values.
    """
    if kind == "str" and proto_type == "int64":
        return dict(_INTEGER_STRING)
    if kind == "object" and proto_type == "google.protobuf.Struct":
        return {"type": "object"}
    if kind in _KFP_SCALARS:
        return dict(_KFP_SCALARS[kind])
    if match := re.fullmatch(r"list\[(.+)\]", kind):
        return {"type": "array", "items": _kfp_type(match[1], proto_type)}
    if match := re.fullmatch(r"dict\(str, (.+)\)", kind):
        return {"type": "object", "additionalProperties": _kfp_type(match[1], proto_type)}
    if re.fullmatch(r"[A-Z]\w*", kind):
        return {"$ref": f"#/definitions/{kind}"}
    raise ValueError(f"kfp_server_api type {kind!r} has no JSON Schema mapping here; add one to _kfp_type")


def _kfp_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"].rsplit("/", 1)[-1]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _kfp_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _kfp_refs(v)]
    return []


def _strict(node: Any) -> Any:
    """One discovery schema node, recursively: unknown fields refused, int64 as string or number, enums."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": f"#/definitions/{node['$ref']}"}
    node = dict(node)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _strict(node[key])
    if "properties" in node:
        declared = node["properties"]
        node["x-required"] = [
            k for k, v in declared.items() if str(v.get("description", "")).startswith("Required")
        ]
        node["properties"] = {k: _strict(v) for k, v in declared.items()}
        node.setdefault("additionalProperties", False)
    kind = node.get("type")
    if kind == "any":
        return {}
    if kind == "string" and node.get("format") in ("int64", "uint64"):
        return dict(_INTEGER_STRING)
    if kind == "string" and "enum" in node:
        return {"anyOf": [{"enum": node["enum"]}, {"type": "integer"}]}
    if kind in ("number", "integer") or node.get("format") in ("double", "float"):
        return {"type": ["number", "string"] if node.get("format") in ("double", "float") else "integer"}
    return node
