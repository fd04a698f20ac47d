"""The audit record on the registry side: check it belongs to this model, store it, tag the version.

evaluate_model writes the record (``kfp_cicd.components.evaluate.audit_record``); registration
refuses a model whose digest differs from the one the gate evaluated, stores the record, the model
card and the report in the version's run (``audit/``), and copies the facts people filter and
audit by into version tags.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kfp_cicd.errors import RegistryError
from kfp_cicd.model.integrity import verify_model

# Run artifact names of the files stored with every registered version.
AUDIT_FILES = {
    "decision": "decision.json",
    "audit_record": "audit_record.json",
    "model_card": "model_card.md",
    "report": "evaluation_report.html",
}


def read_audit_record(path: str | Path) -> dict:
    """The record, with a clear error when it is missing or not an audit record."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(f"audit record {path} is unreadable: {exc}") from exc
    missing = [k for k in ("model", "decision", "approval", "data", "code") if k not in record]
    if missing:
        raise RegistryError(
            f"{path} is not an evaluation audit record (missing {missing}); pass "
            "evaluate_model's audit_record output"
        )
    return record


def check_audited_model(record: dict, model_dir: str | Path) -> str:
    """The model's digest, if it is the model the gate evaluated; otherwise RegistryError."""
    digest = verify_model(model_dir)
    audited = record["model"].get("digest")
    if digest != audited:
        raise RegistryError(
            f"the model to register ({digest}) is not the model the evaluation gate "
            f"approved ({audited}); register evaluate_model's operating_model output"
        )
    if record["approval"].get("decision") != "approved":
        raise RegistryError("the audit record says the gate rejected this model; refusing to register it")
    return digest


def _gaps(record: dict) -> str:
    return "; ".join(
        f"{g['metric']}@{g['key']}={g['gap']:.4f}"
        for g in record["slices"]["gaps"]
        if g.get("gap") is not None
    )


def audit_tags(record: dict) -> dict[str, str]:
    """The version tags taken from the record (strings; empty values left out)."""
    approval, data, code = record["approval"], record["data"], record["code"]
    point, inference, champion = record["operating_point"], record["inference"], record["champion"]
    schema = data.get("schema") or {}
    accepted = (schema.get("contract") or {}).get("accepted") or {}
    tags = {
        "approved_by": approval["decided_by"],
        "approved_at": approval["decided_at"],
        "operating_threshold": repr(float(point["threshold"])),
        "threshold_source": point["source"],
        "expected_cost_per_row": (
            "" if point.get("expected_cost_per_row") is None else f"{point['expected_cost_per_row']:.6f}"
        ),
        "champion_compared": champion["version"] or "none",
        "champion_note": champion["note"],
        "eval_data": data["eval_data"],
        "eval_data_digest": data["eval_data_digest"],
        "schema_digest": schema.get("schema_sha256", ""),
        "images": ", ".join(f"{k}={v}" for k, v in code["images"].items()),
        "latency_ms_per_1k_rows": f"{inference['latency_ms_per_1k_rows']:.3f}",
        "model_size_mb": f"{inference['model_size_mb']:.3f}",
        "slice_gaps": _gaps(record),
        "trained_model_digest": record["model"].get("candidate_digest", ""),
        # Changes against the champion's data contract this run accepted (drift, schema) and why.
        "data_changes_accepted": (
            f"{','.join(accepted['changes'])}: {accepted.get('reason', '')}"
            if accepted.get("changes")
            else ""
        ),
    }
    return {k: str(v) for k, v in tags.items() if v not in ("", None)}


def stage_audit_files(
    directory: Path,
    *,
    decision_path: str,
    audit_record_path: str = "",
    model_card_path: str = "",
    report_path: str = "",
) -> Path:
    """Copy the given files into ``directory`` under their stored names; returns ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    sources = {
        "decision": decision_path,
        "audit_record": audit_record_path,
        "model_card": model_card_path,
        "report": report_path,
    }
    for kind, source in sources.items():
        if not source:
            continue
        if not Path(source).is_file():
            raise RegistryError(f"{kind} file {source} does not exist; pass evaluate_model's {kind} output")
        shutil.copyfile(source, directory / AUDIT_FILES[kind])
    return directory
