"""Schema lifecycle from the main environment: infer, show, diff/evolve and accept a schema.

Infer, show and diff run ``tfdv_job.py`` in the validation environment (``infer_schema``,
``describe_schema``, ``evolve_schema`` modes) like the validation itself; ``kfp-cicd schema
infer|show|diff|accept`` call these functions. An inferred schema holds observed numeric ranges
(tagged ``kfp-cicd:observed-range``) and category domains. Evolution is an explicit step:
:func:`diff_schema` says what new data would change in a reference schema and gives the changed
schema; :func:`write_accepted_schema` writes it for review with who accepted it, when, and based
on what, as ``# kfp-cicd ...`` comment lines that text-format protobuf (and so TFDV) ignores;
:func:`read_acceptance` reads them back.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp_cicd.components.validate_data.validation import (
    DEFAULT_TIMEOUT_S,
    check_hostile_input,
    run_tfdv_request,
)
from kfp_cicd.errors import DataError
from kfp_cicd.tfdv.environment import find_tfdv_python
from kfp_cicd.tfdv.options import ValidationOptions
from kfp_cicd.tfdv.staging import stage


def infer_schema(
    data: str,
    out: Path | str,
    *,
    label_column: str,
    tfdv_python: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Infer a TFDV schema from ``data`` (local, gs://, s3://) and write it to ``out`` (.pbtxt).

    The schema gets the TRAINING (label required) and SERVING (label absent) environments, the
    observed min/max of every numeric feature as its range (tagged ``kfp-cicd:observed-range``:
    validation widens it by the range tolerance) and TFDV's category domains; curate it further
    by editing the text file (a range without the tag is used as written).
    """
    python = tfdv_python or find_tfdv_python()
    with tempfile.TemporaryDirectory(prefix="schema-infer-") as work:
        local = stage(data, Path(work) / "data")
        check_hostile_input(local, data, "schema", ValidationOptions())
        job = {
            "mode": "infer_schema",
            "data": local,
            "data_name": data,
            "label_column": label_column,
            "output_dir": str(Path(work) / "out"),
        }
        run_tfdv_request([job], python, timeout_s)
        target = Path(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(work) / "out" / "schema.pbtxt", target)
    return target


def describe_schema(schema_path: str, *, tfdv_python: str | None = None) -> list[dict[str, Any]]:
    """One row per schema feature: name, type, required, domain/range, environments."""
    if not Path(schema_path).is_file():
        raise DataError(f"schema {schema_path} does not exist; pass a text-format TFDV schema")
    python = tfdv_python or find_tfdv_python()
    with tempfile.TemporaryDirectory(prefix="schema-show-") as work:
        job = {"mode": "describe_schema", "schema_path": str(Path(schema_path).resolve()), "output_dir": work}
        run_tfdv_request([job], python, 300.0)
        document = json.loads((Path(work) / "schema.json").read_text(encoding="utf-8"))
    domains = {d["name"]: d.get("value", []) for d in document.get("string_domain", [])}
    return [_feature_row(feature, domains) for feature in document.get("feature", [])]


def _feature_row(feature: dict[str, Any], domains: dict[str, list[str]]) -> dict[str, Any]:
    """A flat description of one schema feature (from its JSON form)."""
    if "int_domain" in feature or "float_domain" in feature:
        bounds = feature.get("int_domain") or feature.get("float_domain") or {}
        domain = f"[{bounds.get('min', '-inf')}, {bounds.get('max', 'inf')}]"
    elif "domain" in feature:
        values = domains.get(feature["domain"], [])
        domain = "{" + ", ".join(values[:8]) + (", ..." if len(values) > 8 else "") + "}"
    else:
        domain = "-"
    presence = feature.get("presence", {})
    not_in = feature.get("not_in_environment", [])
    return {
        "name": feature["name"],
        "type": feature.get("type", "?"),
        "required_fraction": float(presence.get("min_fraction", 0.0)),
        "domain": domain,
        "not_in_environment": ",".join(not_in) or "-",
    }


# --- evolution and acceptance ------------------------------------------------------------------

#: The kinds of :class:`SchemaChange`.
CHANGE_KINDS = (
    "new_category",
    "range_widened",
    "new_column",
    "missing_column",
    "type_changed",
    "presence_relaxed",
)
#: The header lines :func:`write_accepted_schema` writes, in order: ``# kfp-cicd <key>: <value>``.
ACCEPTANCE_KEYS = ("accepted-by", "accepted-at", "based-on", "data")
_ACCEPTANCE_LINE = re.compile(r"^# kfp-cicd ([a-z-]+): (.*)$")


@dataclass(frozen=True)
class SchemaChange:
    """One way new data differs from a reference schema.

    Attributes:
        feature: the column.
        kind: one of :data:`CHANGE_KINDS`: ``new_category`` (values outside the domain; unioned),
            ``range_widened`` (values outside the range; widened to cover them), ``new_column``
            (added as inferred), ``missing_column`` (reported; the schema keeps it),
            ``type_changed`` (the column takes the new type), ``presence_relaxed`` (fewer rows
            have a value than the schema requires; the required fraction is lowered).
        detail: one sentence for people.
        old, new: the values before and after (categories added, ``[min, max]``, type names...).
    """

    feature: str
    kind: str
    detail: str
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        return f"{self.feature}: {self.kind} ({self.detail})"


@dataclass(frozen=True)
class SchemaDiff:
    """What new data would change in a reference schema, and the schema changed to accept it.

    Attributes:
        changes: one :class:`SchemaChange` per difference (empty: the data fits the schema).
        evolved_schema_text: the reference schema in text format with every change applied
            (equal in content to the reference when there are no changes).
    """

    changes: list[SchemaChange] = field(default_factory=list)
    evolved_schema_text: str = ""


def diff_schema(
    schema_path: str,
    data: str,
    *,
    label_column: str,
    tfdv_python: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> SchemaDiff:
    """What ``data`` (local, gs://, s3://) would change in the schema at ``schema_path``.

    The evolved schema unions new categories into the domains, widens ranges to cover the new
    data's min/max (observed ranges keep their tag), adds new columns as inferred (with observed
    ranges), gives a column whose type changed its new type, and keeps missing columns (they are
    only reported).

    Raises:
        DataError: the schema or data is missing or unusable.
        EnvironmentNotReady: no usable TFDV interpreter.
    """
    if not Path(schema_path).is_file():
        raise DataError(f"schema {schema_path} does not exist; pass a text-format TFDV schema")
    if not label_column.strip():
        raise DataError("label_column is empty; name the column that holds the label")
    python = tfdv_python or find_tfdv_python()
    with tempfile.TemporaryDirectory(prefix="schema-diff-") as work:
        local = stage(data, Path(work) / "data")
        check_hostile_input(local, data, "new", ValidationOptions())
        out = Path(work) / "out"
        job = {
            "mode": "evolve_schema",
            "schema_path": str(Path(schema_path).resolve()),
            "data": local,
            "data_name": data,
            "label_column": label_column,
            "output_dir": str(out),
        }
        run_tfdv_request([job], python, timeout_s)
        records = json.loads((out / "changes.json").read_text(encoding="utf-8"))
        text = (out / "schema.pbtxt").read_text(encoding="utf-8")
    return SchemaDiff([SchemaChange(**record) for record in records], text)


def write_accepted_schema(
    text: str, out: Path | str, *, accepted_by: str, accepted_at: str, based_on: str, data: str
) -> Path:
    """Write the schema ``text`` to ``out`` with the acceptance as ``# kfp-cicd ...`` header lines.

    Earlier acceptance lines in ``text`` are replaced. Returns the path written.
    """
    values = {"accepted-by": accepted_by, "accepted-at": accepted_at, "based-on": based_on, "data": data}
    header = [f"# kfp-cicd {key}: {_one_line(values[key])}" for key in ACCEPTANCE_KEYS]
    body = [line for line in text.splitlines() if not _ACCEPTANCE_LINE.match(line)]
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join([*header, *body]).rstrip("\n") + "\n", encoding="utf-8")
    return target


def read_acceptance(schema_path: str | Path) -> dict[str, str] | None:
    """The ``# kfp-cicd <key>: <value>`` lines of an accepted schema as ``{key: value}``.

    ``None`` when the file has none (a schema that was not written by
    :func:`write_accepted_schema`).
    """
    found: dict[str, str] = {}
    with open(schema_path, encoding="utf-8") as handle:
        for line in handle:
            match = _ACCEPTANCE_LINE.match(line.rstrip("\n"))
            if match and match.group(1) in ACCEPTANCE_KEYS:
                found[match.group(1)] = match.group(2)
            elif line.strip() and not line.startswith("#"):
                break  # the header is over
    return found or None


def _one_line(value: str) -> str:
    """A header value on one line (a newline would end the comment and break the schema)."""
    return " ".join(str(value).split())
