"""The audit record: what was decided about a model, on what evidence, by whom and when.

One JSON document per evaluation (the ``audit_record`` artifact) that register_model stores with
the model version and turns into version tags, and from which the Markdown model card is rendered.
It answers the traceability questions an auditor asks (the EU AI Act's record-keeping articles):
which data (fingerprint, schema) and code (revision, images) produced the model, with which
parameters, which class is positive and the rule that chose it, which rule chose the operating
threshold, how it measured (overall, per segment, against the logistic-regression baseline and the
champion), what was decided and why, who or what decided, and when.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from kfp_cicd.components.evaluate.outcome import EvaluationOutcome
from kfp_cicd.errors import DataError
from kfp_cicd.provenance import code_revision
from kfp_cicd.registry.contract import read_contract
from kfp_cicd.registry.history import read_training_history
from kfp_cicd.version import __version__

RECORD_VERSION = 1
AUTOMATED_APPROVER = "kfp-cicd quality gate (automated)"


@dataclass(frozen=True)
class AuditContext:
    """Lineage the evaluation is told about by the pipeline (all optional, recorded as given)."""

    model_name: str = ""
    eval_data: str = ""
    train_data: str = ""
    data_fingerprint: str = ""
    schema_dir: str = ""
    image_refs: str = ""
    pipeline_job_name: str = ""
    pipeline_job_id: str = ""
    approved_by: str = ""


def parse_image_refs(text: str) -> dict[str, str]:
    """``"runtime=ghcr.io/x/runtime:1,validation=…"`` → ``{"runtime": …, "validation": …}``."""
    refs = {}
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        name, sep, ref = part.partition("=")
        if not sep or not name.strip() or not ref.strip():
            raise DataError(f"image reference {part!r} is not 'name=image:tag' (e.g. runtime=ghcr.io/o/i:1)")
        refs[name.strip()] = ref.strip()
    return refs


def frame_digest(frame: pd.DataFrame) -> str:
    """sha256 of a table's columns and row contents (independent of the file format it came in)."""
    digest = hashlib.sha256("\0".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def schema_summary(schema_dir: str) -> dict | None:
    """The validated schema: features.json's content and the sha256 of schema.pbtxt (None: not given)."""
    if not schema_dir:
        return None
    root = Path(schema_dir)
    features = root / "features.json"
    if not features.is_file():
        raise DataError(f"schema directory {root} has no features.json; pass validate_data's schema output")
    summary: dict = {"features": json.loads(features.read_text())}
    pbtxt = root / "schema.pbtxt"
    if pbtxt.is_file():
        summary["schema_sha256"] = "sha256:" + hashlib.sha256(pbtxt.read_bytes()).hexdigest()
    # The data contract: the reference the data was validated against and what the run accepted.
    summary["contract"] = read_contract(root)
    return summary


def training_history_summary(model_dir: str | Path) -> dict | None:
    """Epochs (per network when several were cross-fitted) and the last epoch's entry of
    ``training_history.json``, when the model has one."""
    history = read_training_history(model_dir)
    if not history:
        return None
    members = {int(entry.get("member", 0)) for entry in history}
    epochs = max(sum(1 for entry in history if int(entry.get("member", 0)) == m) for m in members)
    return {"epochs": epochs, "networks": len(members), "last_epoch": history[-1]}


def approval(outcome: EvaluationOutcome, context: AuditContext, decided_at: datetime | None = None) -> dict:
    """Who or what decided, what, and when."""
    return {
        "decision": "approved" if outcome.decision.approved else "rejected",
        "decided_by": context.approved_by or AUTOMATED_APPROVER,
        "decided_at": (decided_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "pipeline_job_name": context.pipeline_job_name,
        "pipeline_job_id": context.pipeline_job_id,
    }


def baseline_section(outcome: EvaluationOutcome) -> dict:
    """The logistic-regression baseline: how it was fitted and its holdout metrics (or that it is off)."""
    if outcome.baseline is None:
        return {"compared": False, "note": outcome.baseline_note, "label": None, "metrics": None}
    return {"compared": True, "note": outcome.baseline_note, **outcome.baseline.to_dict()}


def build_audit_record(
    outcome: EvaluationOutcome,
    context: AuditContext,
    *,
    model_digest: str,
    candidate_digest: str,
    model_config: dict,
    eval_frame: pd.DataFrame,
    model_dir: str | Path,
    parameters: dict,
) -> dict:
    """The whole record as a JSON-ready dict."""
    champion = outcome.champion
    return {
        "record_version": RECORD_VERSION,
        "model": {
            "name": context.model_name,
            "digest": model_digest,
            "candidate_digest": candidate_digest,
            "operating_threshold": outcome.operating_point.threshold,
            "threshold_rule": outcome.operating_point.source,
            "label": model_config.get("label"),
            "classes": outcome.classes.to_dict(),
            "features": {
                "numeric": model_config.get("numeric", []),
                "categorical": model_config.get("categorical", []),
            },
            "training_history": training_history_summary(model_dir),
        },
        "data": {
            "train_data": context.train_data,
            "data_fingerprint": context.data_fingerprint,
            "eval_data": context.eval_data,
            "eval_rows": len(eval_frame),
            "eval_data_digest": frame_digest(eval_frame),
            "schema": schema_summary(context.schema_dir),
        },
        "code": {
            "code_revision": code_revision(),
            "kfp_cicd_version": __version__,
            "images": parse_image_refs(context.image_refs),
        },
        "pipeline": {"job_name": context.pipeline_job_name, "job_id": context.pipeline_job_id},
        "parameters": {**parameters, "policy": outcome.policy.to_dict()},
        "metrics": outcome.metrics,
        "operating_point": outcome.operating_point.to_dict(),
        "inference": outcome.inference.to_dict(),
        "baseline": baseline_section(outcome),
        "champion": {
            "compared": champion is not None,
            "note": outcome.champion_note,
            "label": champion.label if champion else None,
            "version": champion.version if champion else None,
            "metrics": champion.report.metrics if champion else None,
        },
        "slices": outcome.slices.to_dict(),
        "decision": outcome.decision.to_dict(),
        "approval": approval(outcome, context),
    }


def write_audit_record(record: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=_json_default))
    return path


def _json_default(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
