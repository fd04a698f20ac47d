"""evaluate_model alone under kfp.local: the candidate imported, the gate's outputs read back."""

from __future__ import annotations

import json
from pathlib import Path

from component_testing import IMAGES, run_with_imported_artifacts
from kfp.dsl import Model

from kfp_cicd.components.evaluate.component import build_component
from kfp_cicd.data.synthetic import DatasetFiles


def test_the_task_decides_and_writes_its_outputs(
    dataset: DatasetFiles, candidate: Path, tmp_path: Path, lenient_gate: dict[str, object]
) -> None:
    outputs = run_with_imported_artifacts(
        build_component(IMAGES.runtime),
        tmp_path / "root",
        {"model": (Model, candidate, {})},
        eval_data=str(dataset.holdout),
        train_data=str(dataset.train),
        **lenient_gate,
    )

    assert outputs.parameters["Output"] is True
    decision = json.loads(outputs.artifact_paths["decision"].read_text())
    assert decision["approved"] is True
    assert outputs.artifact_metadata["metrics"]["roc_auc"] >= 0.55
    assert (outputs.artifact_paths["operating_model"] / "MLmodel").is_file()
