"""The data contract of a validation: which reference the data is checked against, what a run
accepts, and the ``contract.json`` the release stores.

The reference, in order:

1. ``schema_path`` when given (e.g. a schema written by ``kfp-cicd schema accept`` and committed
   after review): the schema file;
2. else the champion's stored schema (:mod:`kfp_cicd.registry.contract`);
3. else (the first release) a schema inferred from the training data, with the observed numeric
   ranges and category domains, which this release stores as the next run's reference.

Drift is checked against ``baseline_statistics`` when given, else the champion's training
statistics (none for the first release). A run may accept drift, values beyond the numeric
ranges, and/or schema changes (``accept_data_changes``); a retraining run started by monitoring
accepts drift and wider ranges (the data moved: that is why it retrains). Whatever is accepted is
written in ``contract.json`` with the anomalies it let through, and the audit record and model
card show it.
"""

from __future__ import annotations

import getpass
import json
import logging
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kfp_cicd.parameter_validation import check_accepted_changes
from kfp_cicd.registry.contract import (
    CONTRACT_FILE,
    Reference,
    contract_document,
    download_reference,
    file_digest,
    find_reference,
)
from kfp_cicd.tfdv.options import ValidationOptions

log = logging.getLogger(__name__)

#: The TFDV anomaly kinds each acceptable change lets through.
ACCEPTED_KINDS: dict[str, tuple[str, ...]] = {
    "drift": (
        "COMPARATOR_L_INFTY_HIGH",
        "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
        "COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH",
    ),
    "ranges": ("FLOAT_TYPE_BIG_FLOAT", "FLOAT_TYPE_SMALL_FLOAT", "INT_TYPE_BIG_INT", "INT_TYPE_SMALL_INT"),
    "schema": (
        "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
        "FLOAT_TYPE_BIG_FLOAT",
        "FLOAT_TYPE_SMALL_FLOAT",
        "INT_TYPE_BIG_INT",
        "INT_TYPE_SMALL_INT",
        "SCHEMA_NEW_COLUMN",
    ),
}
#: What a retraining run started by monitoring accepts: the data moved, which is why it retrains.
#: Unknown categories, type changes, missing or new columns still stop it (a broken feed).
RETRAINING_ACCEPTS = ("drift", "ranges")
#: Accepted changes after which the stored schema is evolved to cover the new data.
EVOLVING_CHANGES = ("ranges", "schema")

FIRST_RELEASE, CHAMPION, SCHEMA_FILE = "first_release", "champion", "schema_file"


@dataclass(frozen=True)
class ReferenceChoice:
    """What one validation checks the data against.

    Attributes:
        kind: ``"champion"``, ``"schema_file"`` or ``"first_release"``.
        schema_path: the schema to validate against; ``""`` infers one (first release).
        baseline_statistics: the statistics drift is measured against; ``""``: no drift check.
        name: how reports name the reference (``""`` for a first release).
        details: what ``contract.json`` records about it.
    """

    kind: str
    schema_path: str
    baseline_statistics: str
    name: str
    details: dict[str, Any] = field(default_factory=dict)


def champion_of(tracking_uri: str, model_name: str) -> Reference | None:
    """The champion's stored contract; ``None`` without a registry or a champion (a first release)."""
    return find_reference(tracking_uri, model_name) if tracking_uri and model_name else None


def choose_reference(
    *,
    champion: Reference | None,
    tracking_uri: str,
    schema_path: str,
    baseline_statistics: str,
    work_dir: str | Path,
) -> ReferenceChoice:
    """The reference of this run (see the module docstring), the champion's files (from
    :func:`champion_of`) downloaded into ``work_dir``.

    Raises:
        RegistryError: the champion's contract cannot be read, or differs from its digests.
    """
    local = download_reference(champion, tracking_uri, work_dir) if champion else None
    champion_schema = str(local.schema_path) if local and local.schema_path else ""
    champion_statistics = str(local.statistics_path) if local and local.statistics_path else ""
    baseline = baseline_statistics or champion_statistics
    details: dict[str, Any] = {
        "champion": {"model_name": champion.model_name, "version": champion.version} if champion else None,
        "baseline_statistics": baseline_statistics or (champion.statistics_uri if champion else ""),
        "baseline_statistics_digest": (
            ""
            if baseline_statistics or not champion
            else champion.statistics_digest
            or (file_digest(champion_statistics) if champion_statistics else "")
        ),
    }
    drift_note = (
        f"drift against {champion.describe()}'s training statistics"
        if champion_statistics and not baseline_statistics
        else f"drift against {baseline_statistics}"
        if baseline_statistics
        else "no drift check (no reference statistics)"
    )
    if schema_path:
        details.update(schema_path=schema_path)
        return ReferenceChoice(
            SCHEMA_FILE, schema_path, baseline, f"schema file {schema_path}; {drift_note}", details
        )
    if champion_schema:
        details.update(schema_uri=champion.schema_uri, schema_digest=champion.schema_digest)
        return ReferenceChoice(
            CHAMPION,
            champion_schema,
            baseline,
            f"{champion.describe()} (its stored schema; {drift_note})",
            details,
        )
    if champion is not None:
        # A champion registered before schemas were stored: infer, but still check drift.
        details.update(note="the champion stores no schema; this release's inferred schema is stored")
        return ReferenceChoice(
            FIRST_RELEASE,
            "",
            baseline,
            f"a schema inferred from the training data ({champion.describe()} stores none; {drift_note})",
            details,
        )
    return ReferenceChoice(FIRST_RELEASE, "", baseline, "", details)


def reference_key(champion: Reference | None) -> str:
    """What identifies the champion's data contract: ``""`` without a champion (a first release),
    else ``"<model> version <v> schema <digest> statistics <digest>"``.

    The pipeline passes it to validate_data, so a cached validation is reused only while the
    champion's contract is the same one, and validate_data checks it still is.
    """
    if champion is None:
        return ""
    return (
        f"{champion.describe().removeprefix('champion ')} schema {champion.schema_digest or '-'} "
        f"statistics {champion.statistics_digest or '-'}"
    )


@dataclass(frozen=True)
class Acceptance:
    """What a run accepts against its reference, and why."""

    changes: tuple[str, ...]
    reason: str

    @property
    def kinds(self) -> tuple[str, ...]:
        """The anomaly kinds this acceptance lets through."""
        return tuple(kind for change in self.changes for kind in ACCEPTED_KINDS[change])


def acceptance_for(accept_data_changes: str, trigger_reason: str) -> Acceptance:
    """The changes this run accepts: the parameter's, plus :data:`RETRAINING_ACCEPTS` for a
    retraining run started by monitoring.

    Raises:
        DataError: ``accept_data_changes`` names something that cannot be accepted.
    """
    changes = set(check_accepted_changes(accept_data_changes))
    reasons = []
    if changes:
        reasons.append(f"accept_data_changes={','.join(sorted(changes))} was set for this run")
    if trigger_reason.strip():
        changes.update(RETRAINING_ACCEPTS)
        reasons.append(f"retraining started by monitoring: {trigger_reason.strip()}")
    return Acceptance(tuple(sorted(changes)), "; ".join(reasons))


def accepted_record(
    acceptance: Acceptance, anomalies_file: str | Path, pipeline_job: str = ""
) -> dict[str, Any] | None:
    """The ``accepted`` object of ``contract.json``: what was accepted, why, by which run, and the
    anomalies it let through; ``None`` when the run accepted nothing."""
    if not acceptance.changes:
        return None
    anomalies = []
    path = Path(anomalies_file)
    if path.is_file():
        anomalies = [a for a in json.loads(path.read_text(encoding="utf-8")) if a["kind"] in acceptance.kinds]
    return {
        "changes": list(acceptance.changes),
        "reason": acceptance.reason,
        "accepted_by": pipeline_job or _local_user(),
        "accepted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "anomalies": [
            {k: a.get(k, "") for k in ("dataset", "feature", "kind", "short_description")} for a in anomalies
        ],
    }


def _local_user() -> str:
    """``user@host`` of whoever runs this outside a pipeline."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def write_contract(
    schema_dir: str | Path,
    *,
    choice: ReferenceChoice,
    settings: dict[str, Any],
    accepted: dict[str, Any] | None,
    schema_acceptance: dict[str, str] | None,
) -> Path:
    """Write ``contract.json`` into the schema output (register stores it with the version)."""
    reference = {"kind": choice.kind, "name": choice.name, **choice.details}
    document = contract_document(
        settings=settings, reference=reference, accepted=accepted, schema_acceptance=schema_acceptance
    )
    path = Path(schema_dir) / CONTRACT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def contract_summary_lines(accepted: dict[str, Any] | None) -> list[str]:
    """Markdown lines for the validation summary: what this run accepted against its reference
    (the reference itself is named by the TFDV job's summary); none when nothing was accepted."""
    if not accepted:
        return []
    count = len(accepted["anomalies"])
    lines = [
        "",
        "## Accepted in this run",
        "",
        f"**{', '.join(accepted['changes'])}** ({accepted['reason']}): {count} "
        f"anomal{'y' if count == 1 else 'ies'} let through, recorded in the data contract, the audit "
        "record and the model card:",
    ]
    lines += [
        f"- [{a['dataset']}] `{a['feature'] or '(data set)'}`: {a['kind']}" for a in accepted["anomalies"]
    ]
    return [*lines, ""]


def evolve_stored_schema(schema_dir: str | Path, train_data: str, label_column: str) -> bool:
    """After a run that accepted schema changes, store the schema evolved to cover the new data.

    Only when anomalies of the accepted schema kinds were let through; returns whether it changed.
    """
    from kfp_cicd.components.validate_data.schema_lifecycle import diff_schema

    schema = Path(schema_dir) / "schema.pbtxt"
    diff = diff_schema(str(schema), train_data, label_column=label_column)
    if not diff.changes:
        return False
    schema.write_text(diff.evolved_schema_text, encoding="utf-8")
    log.info(
        "stored the schema evolved for the accepted changes: %s", ", ".join(str(c) for c in diff.changes)
    )
    return True


def settings_record(options: ValidationOptions) -> dict[str, Any]:
    """The drift/skew and tolerance settings ``contract.json`` records."""
    return {
        "drift_default_threshold": options.drift_default_threshold,
        "drift_thresholds": dict(options.drift_thresholds),
        "drift_metrics": {"numeric": "JENSEN_SHANNON_DIVERGENCE", "categorical": "L_INFINITY"},
        "range_tolerance": options.range_tolerance,
        "max_unknown_category_fraction": options.max_unknown_category_fraction,
    }
