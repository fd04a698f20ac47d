"""The validate_data task: choose the reference, validate against it, record the data contract.

:mod:`~kfp_cicd.components.validate_data.contract` says what the reference is and what a run
accepts; :mod:`~kfp_cicd.components.validate_data.validation` runs TFDV and publishes the outputs.
This module puts them in order for the KFP component, and refuses bad parameters before anything
is downloaded or TFDV starts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from kfp_cicd.components.validate_data.contract import (
    ACCEPTED_KINDS,
    EVOLVING_CHANGES,
    acceptance_for,
    accepted_record,
    champion_of,
    choose_reference,
    contract_summary_lines,
    evolve_stored_schema,
    reference_key,
    settings_record,
    write_contract,
)
from kfp_cicd.components.validate_data.schema_lifecycle import read_acceptance
from kfp_cicd.components.validate_data.validation import (
    DataValidationFailed,
    run_validation_task,
)
from kfp_cicd.errors import DataError
from kfp_cicd.tfdv.options import (
    ValidationOptions,
    parse_beam_options,
    parse_drift_thresholds,
    parse_tolerated_kinds,
)


def run_contract_validation(
    *,
    train_data: str,
    eval_data: str,
    label_column: str,
    schema_path: str,
    statistics_dir: str,
    schema_dir: str,
    anomalies_file: str,
    report_file: str,
    summary_file: str,
    drift_report_file: str,
    drift_html_file: str,
    artifact_metadata: Mapping[str, MutableMapping[str, Any]] | None = None,
    tolerate_anomalies: str = "",
    baseline_statistics: str = "",
    drift_thresholds: str = "",
    drift_default_threshold: float = 0.15,
    processing: str = "auto",
    beam_options: str = "",
    beam_threshold_mb: float = 1024.0,
    sample_rate: float = 1.0,
    positive_label: str = "",
    tracking_uri: str = "",
    model_name: str = "",
    range_tolerance: float = 1.0,
    max_unknown_category_fraction: float = 0.01,
    accept_data_changes: str = "",
    trigger_reason: str = "",
    pipeline_job_name: str = "",
    reference: str | None = None,
) -> tuple[int, int, int, str]:
    """The component's body; returns ``(train_rows, eval_rows, anomaly_count, data_fingerprint)``.

    Raises:
        DataError: a parameter or the label is unusable (before anything is downloaded).
        RegistryError: the champion's contract cannot be read or fails its digest check.
        DataValidationFailed: anomalies neither tolerated nor accepted (after the outputs are written).
        DataError: ``reference`` (data_contract_reference's answer, when the pipeline passes it)
            no longer names the champion's contract: the champion changed during the run.
    """
    # Every parameter is checked first (ValidationOptions is the one check of the numbers), then the
    # registry is read once, then the label column (run_validation_task), then TFDV.
    acceptance = acceptance_for(accept_data_changes, trigger_reason)
    tolerated = parse_tolerated_kinds(tolerate_anomalies)
    options = ValidationOptions(
        drift_thresholds=parse_drift_thresholds(drift_thresholds),
        drift_default_threshold=drift_default_threshold,
        processing=processing,
        beam_options=parse_beam_options(beam_options),
        beam_threshold_mb=beam_threshold_mb,
        sample_rate=sample_rate,
        range_tolerance=range_tolerance,
        max_unknown_category_fraction=max_unknown_category_fraction,
    )
    champion = champion_of(tracking_uri, model_name)
    if reference is not None and reference_key(champion) != reference:
        raise DataError(
            f"the champion of {model_name} changed while this run started (it was "
            f"{reference or 'none: a first release'}, it is now {reference_key(champion) or 'none'}); "
            "run the pipeline again so the data is validated against the current champion's data contract"
        )
    with tempfile.TemporaryDirectory(prefix="validate_data-reference-") as work:
        choice = choose_reference(
            champion=champion,
            tracking_uri=tracking_uri,
            schema_path=schema_path,
            baseline_statistics=baseline_statistics,
            work_dir=work,
        )
        options = replace(options, baseline_statistics=choice.baseline_statistics, reference_name=choice.name)
        failure: DataValidationFailed | None = None
        try:
            counts = run_validation_task(
                train_data,
                eval_data,
                label_column,
                choice.schema_path,
                statistics_dir=statistics_dir,
                schema_dir=schema_dir,
                anomalies_file=anomalies_file,
                report_file=report_file,
                summary_file=summary_file,
                drift_report_file=drift_report_file,
                drift_html_file=drift_html_file,
                artifact_metadata=artifact_metadata,
                tolerate_kinds=(*tolerated, *acceptance.kinds),
                options=options,
                positive_label=positive_label,
            )
        except DataValidationFailed as error:
            failure = error
    accepted = accepted_record(acceptance, anomalies_file, pipeline_job_name)
    evolving = {
        kind for change in EVOLVING_CHANGES if change in acceptance.changes for kind in ACCEPTED_KINDS[change]
    }
    if failure is None and accepted and any(a["kind"] in evolving for a in accepted["anomalies"]):
        evolve_stored_schema(schema_dir, train_data, label_column)
    write_contract(
        schema_dir,
        choice=choice,
        settings=settings_record(options),
        accepted=accepted,
        schema_acceptance=read_acceptance(schema_path)
        if schema_path and Path(schema_path).is_file()
        else None,
    )
    with open(summary_file, "a", encoding="utf-8") as summary:
        summary.write("\n".join(contract_summary_lines(accepted)))
    if artifact_metadata is not None and "schema" in artifact_metadata:
        artifact_metadata["schema"].update(
            reference=choice.kind,
            reference_name=choice.name or "first release: inferred from the training data",
            accepted_changes=list(acceptance.changes),
        )
    if failure is not None:
        raise failure
    return counts
