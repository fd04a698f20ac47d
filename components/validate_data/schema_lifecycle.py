"""Schema lifecycle from the main environment: infer a schema from data, show a schema's rules.

Both run ``tfdv_job.py`` in the validation environment (``infer_schema`` / ``describe_schema``
modes) like the validation itself; ``kfp-cicd schema infer|show`` call these functions.
"""

from __future__ import annotations

import json
import shutil
import tempfile
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

    The schema gets the TRAINING (label required) and SERVING (label absent) environments; curate
    it further (ranges, presence) by editing the text file.
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
