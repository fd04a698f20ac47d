"""The monitoring components, each alone under kfp.local."""

from __future__ import annotations

import json
from pathlib import Path

from component_testing import IMAGES, MODEL_NAME, kfp_local, run_with_imported_artifacts
from kfp.dsl import Artifact, Markdown
from mlflow import MlflowClient

from kfp_cicd.components.monitor.component import (
    build_component,
    build_record_component,
    build_verdict_component,
)
from kfp_cicd.data.synthetic import LABEL_COLUMN, DatasetFiles


def test_check_drift_sees_no_drift_in_the_champions_own_data(
    dataset: DatasetFiles, tracking_uri: str, champion: str, tmp_path: Path
) -> None:
    with kfp_local(tmp_path / "root"):
        task = build_component(IMAGES.validation)(
            production_data=str(dataset.train),
            tracking_uri=tracking_uri,
            model_name=MODEL_NAME,
            label_column=LABEL_COLUMN,
        )

    decision = json.loads(Path(task.outputs["decision"].path).read_text())
    assert task.outputs["Output"] is False, decision["reason"]
    assert decision["trigger"] == "no_drift" and decision["champion_version"] == champion


def test_monitoring_verdict_reads_the_decision(drift_decision: Path, tmp_path: Path) -> None:
    outputs = run_with_imported_artifacts(
        build_verdict_component(IMAGES.runtime),
        tmp_path / "root",
        {"decision": (Artifact, drift_decision, {})},
    )
    assert outputs.parameters["Output"].startswith("RETRAIN: amount drifted")


def test_record_retraining_trigger_tags_the_version(
    drift_decision: Path,
    drift_report: Path,
    tracking_uri: str,
    champion: str,
    pipeline_job_id: str,
    tmp_path: Path,
) -> None:
    outputs = run_with_imported_artifacts(
        build_record_component(IMAGES.runtime),
        tmp_path / "root",
        {"decision": (Artifact, drift_decision, {}), "drift_report": (Markdown, drift_report, {})},
        tracking_uri=tracking_uri,
        model_name=MODEL_NAME,
        pipeline_job_id=pipeline_job_id,
    )

    assert champion in outputs.parameters["Output"]
    tags = MlflowClient(tracking_uri=tracking_uri).get_model_version(MODEL_NAME, champion).tags
    assert tags["retraining_trigger"] == "skew"
