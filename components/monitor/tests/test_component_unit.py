"""The monitoring components through their Python functions (``python_func``): real TFDV drift
checks against a champion in a real MLflow SQLite registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from component_testing import IMAGES, MODEL_NAME, input_artifact, output_artifact
from kfp.dsl import HTML, Artifact, Markdown
from mlflow import MlflowClient

from kfp_cicd.components.monitor.component import (
    build_component,
    build_record_component,
    build_verdict_component,
)
from kfp_cicd.data.synthetic import LABEL_COLUMN

OUTPUTS = {
    "decision": Artifact,
    "drift_report": Markdown,
    "drift_view": HTML,
    "statistics": Artifact,
    "statistics_view": HTML,
}


def outputs(root: Path) -> dict[str, Any]:
    return {name: output_artifact(cls, root / name) for name, cls in OUTPUTS.items()}


def test_without_a_champion_the_verdict_is_retrain(
    drifted_window: Path, tracking_uri: str, tmp_path: Path
) -> None:
    check_drift = build_component(IMAGES.validation).python_func
    artifacts = outputs(tmp_path)

    retrain = check_drift(
        production_data=str(drifted_window),
        tracking_uri=tracking_uri,
        model_name=MODEL_NAME,
        label_column=LABEL_COLUMN,
        **artifacts,
    )

    decision = json.loads(Path(artifacts["decision"].path).read_text())
    assert retrain is True
    assert decision["trigger"] == "no_champion" and decision["champion_version"] == ""


def test_a_drifted_window_is_caught_against_the_champion(
    drifted_window: Path, tracking_uri: str, champion: str, tmp_path: Path
) -> None:
    check_drift = build_component(IMAGES.validation).python_func
    artifacts = outputs(tmp_path)

    retrain = check_drift(
        production_data=str(drifted_window),
        tracking_uri=tracking_uri,
        model_name=MODEL_NAME,
        label_column=LABEL_COLUMN,
        **artifacts,
    )

    decision = json.loads(Path(artifacts["decision"].path).read_text())
    assert retrain is True and decision["trigger"] == "skew", decision["reason"]
    assert decision["champion_version"] == champion
    assert "amount" in decision["skewed_features"] and "amount" in decision["drifted_features"]
    assert decision["previous_window"] == "" and "window drift not measured" in decision["reason"]
    assert decision["window_statistics"].endswith("/window_statistics/window_stats.pb")
    assert sorted(p.name for p in Path(artifacts["statistics"].path).iterdir()) == [
        "baseline_stats.pb",
        "production_stats.pb",
    ]
    for name in ("drift_view", "statistics_view"):
        page = Path(artifacts[name].path).read_text()
        assert "http://" not in page and "https://" not in page and "<script" not in page, name


def test_the_verdict_is_one_sentence(drift_decision: Path) -> None:
    monitoring_verdict = build_verdict_component(IMAGES.runtime).python_func
    verdict = monitoring_verdict(decision=input_artifact(Artifact, drift_decision))
    assert verdict == "RETRAIN: amount drifted: Jensen-Shannon 0.41 > 0.15"


def test_the_verdict_refuses_a_file_that_is_no_decision(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text('{"approved": true}')
    monitoring_verdict = build_verdict_component(IMAGES.runtime).python_func
    with pytest.raises(Exception, match="not a monitoring decision"):
        monitoring_verdict(decision=input_artifact(Artifact, tmp_path / "other.json"))


def test_the_trigger_is_recorded_on_the_retrained_version(
    drift_decision: Path, drift_report: Path, tracking_uri: str, champion: str, pipeline_job_id: str
) -> None:
    record_retraining_trigger = build_record_component(IMAGES.runtime).python_func

    summary = record_retraining_trigger(
        decision=input_artifact(Artifact, drift_decision),
        drift_report=input_artifact(Markdown, drift_report),
        tracking_uri=tracking_uri,
        model_name=MODEL_NAME,
        pipeline_job_id=pipeline_job_id,
    )

    assert champion in summary
    tags = MlflowClient(tracking_uri=tracking_uri).get_model_version(MODEL_NAME, champion).tags
    assert tags["retraining_trigger"] == "skew"
    assert tags["retraining_reason"] == "amount drifted: Jensen-Shannon 0.41 > 0.15"
