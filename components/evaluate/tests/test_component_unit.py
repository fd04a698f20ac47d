"""evaluate_model through its Python function (``python_func``): a real candidate, a real holdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from component_testing import IMAGES, input_artifact, output_artifact
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Markdown, Metrics, Model

from kfp_cicd.components.evaluate.component import build_component
from kfp_cicd.data.synthetic import DatasetFiles

OUTPUTS = {
    "metrics": Metrics,
    "classification_metrics": ClassificationMetrics,
    "decision": Artifact,
    "operating_model": Model,
    "report": HTML,
    "model_card": Markdown,
    "audit_record": Artifact,
}


def outputs(root: Path) -> dict[str, Any]:
    return {name: output_artifact(cls, root / name) for name, cls in OUTPUTS.items()}


def test_a_good_enough_candidate_is_approved_with_its_evidence(
    dataset: DatasetFiles, candidate: Path, tmp_path: Path, lenient_gate: dict[str, object]
) -> None:
    evaluate_model = build_component(IMAGES.runtime).python_func
    artifacts = outputs(tmp_path)

    approved = evaluate_model(
        eval_data=str(dataset.holdout),
        model=input_artifact(Model, candidate),
        train_data=str(dataset.train),
        **artifacts,
        **lenient_gate,
    )

    decision = json.loads(Path(artifacts["decision"].path).read_text())
    assert approved is True and decision["approved"] is True, decision["reasons"]
    assert any(check["metric"] == "roc_auc" and check["passed"] for check in decision["checks"])
    assert 0.55 <= artifacts["metrics"].metadata["roc_auc"] <= 1.0
    assert (Path(artifacts["operating_model"].path) / "MLmodel").is_file()
    assert "<html" in Path(artifacts["report"].path).read_text().lower()
    assert Path(artifacts["model_card"].path).read_text().strip()
    assert json.loads(Path(artifacts["audit_record"].path).read_text())


def test_a_candidate_below_the_bar_is_refused_with_the_reason(
    dataset: DatasetFiles, candidate: Path, tmp_path: Path
) -> None:
    evaluate_model = build_component(IMAGES.runtime).python_func
    artifacts = outputs(tmp_path)

    approved = evaluate_model(
        eval_data=str(dataset.holdout),
        model=input_artifact(Model, candidate),
        train_data=str(dataset.train),
        min_roc_auc=0.9999,
        **artifacts,
    )

    decision = json.loads(Path(artifacts["decision"].path).read_text())
    assert approved is False and decision["approved"] is False
    assert any("roc_auc" in reason for reason in decision["reasons"])
