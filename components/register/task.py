"""The register_model task: an approved model, its audit trail and lineage into the MLflow registry.

The registry client itself (registration, aliases, retries, tags) is the library's
:mod:`kfp_cicd.registry`; this module is what is specific to the register step: refuse what the
gate did not approve, gather the lineage and audit tags, stage the audit files, register.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from kfp_cicd.components.register.audit import (
    audit_tags,
    check_audited_model,
    read_audit_record,
    stage_audit_files,
)
from kfp_cicd.errors import RegistryError
from kfp_cicd.provenance import code_revision
from kfp_cicd.registry.client import storage_location
from kfp_cicd.registry.contract import contract_artifacts
from kfp_cicd.registry.history import history_metrics, read_training_history
from kfp_cicd.registry.registration import register_model_version
from kfp_cicd.registry.tags import TRIGGER_REASON_TAG
from kfp_cicd.version import __version__


def run_register_task(
    *,
    model_dir: str,
    metrics: dict,
    decision_path: str,
    tracking_uri: str,
    model_name: str,
    data_fingerprint: str,
    train_data: str,
    pipeline_job_name: str,
    pipeline_job_id: str,
    audit_record_path: str = "",
    model_card_path: str = "",
    report_path: str = "",
    statistics_dir: str = "",
    schema_dir: str = "",
    trigger_reason: str = "",
) -> tuple[str, str, str]:
    """The KFP task body: register with lineage and audit tags; returns (version, model_uri, storage_uri).

    With an audit record (from evaluate_model) the model must be the one the gate evaluated (same
    digest); the record, the model card and the report are stored in the run, the card becomes the
    version's description, and the audit's key facts become version tags. A
    ``training_history.json`` in the model directory is logged as per-epoch metrics.
    ``statistics_dir`` (validate_data's statistics output) is stored in the run's ``statistics/``
    folder and the version tagged ``training_statistics_uri`` with its ``train_stats.pb``: the
    baseline the monitoring pipeline compares production data with. ``schema_dir`` (validate_data's
    schema output) is stored as the version's data contract (``data_contract/``), and the digests of
    the schema and the statistics become tags (:mod:`kfp_cicd.registry.contract`). ``trigger_reason``
    (set by a
    monitoring run that retrains) becomes the tag ``retraining_reason``.
    """
    decision = json.loads(Path(decision_path).read_text())
    if not decision.get("approved"):
        raise RegistryError("refusing to register a model the evaluation gate did not approve")
    tags = {
        "data_fingerprint": data_fingerprint,
        "train_data": train_data,
        "code_revision": code_revision(),
        "kfp_cicd_version": __version__,
        "pipeline_job_name": pipeline_job_name,
        "pipeline_job_id": pipeline_job_id,
        "gate_decision": "approved",
        "gate_reasons": "; ".join(decision.get("reasons", [])),
    }
    if audit_record_path:
        record = read_audit_record(audit_record_path)
        check_audited_model(record, model_dir)
        tags.update(audit_tags(record))
    if trigger_reason:
        tags[TRIGGER_REASON_TAG] = trigger_reason
    artifact_dirs, artifact_tags, digest_tags = contract_artifacts(schema_dir, statistics_dir)
    tags.update(digest_tags)
    description = Path(model_card_path).read_text() if model_card_path else None
    numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-audit-") as staging:
        audit_dir = stage_audit_files(
            Path(staging),
            decision_path=decision_path,
            audit_record_path=audit_record_path,
            model_card_path=model_card_path,
            report_path=report_path,
        )
        registered = register_model_version(
            model_dir,
            tracking_uri=tracking_uri,
            model_name=model_name,
            tags=tags,
            metrics=numeric,
            params={"train_data": train_data},
            step_metrics=history_metrics(read_training_history(model_dir)),
            artifact_dirs={"audit": audit_dir, **artifact_dirs},
            description=description,
            artifact_tags=artifact_tags,
        )
    location = storage_location(tracking_uri, model_name, registered.version)
    return registered.version, registered.model_uri, location
