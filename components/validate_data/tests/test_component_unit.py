"""validate_data through its Python function (``python_func``): real TFDV on 2,000 generated rows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from component_testing import IMAGES, output_artifact
from kfp.dsl import HTML, Artifact, Markdown

from kfp_cicd.components.validate_data.component import build_component
from kfp_cicd.data.synthetic import LABEL_COLUMN, DatasetFiles
from kfp_cicd.errors import DataError

OUTPUTS = {
    "statistics": Artifact,
    "schema": Artifact,
    "anomalies": Artifact,
    "report": HTML,
    "summary": Markdown,
    "drift_report": Markdown,
    "drift_view": HTML,
}


def outputs(root: Path) -> dict[str, Any]:
    return {name: output_artifact(cls, root / name) for name, cls in OUTPUTS.items()}


def test_clean_data_passes_and_every_output_is_written(dataset: DatasetFiles, tmp_path: Path) -> None:
    validate_data = build_component(IMAGES.validation).python_func
    artifacts = outputs(tmp_path)

    train_rows, eval_rows, anomaly_count, fingerprint = validate_data(
        train_data=str(dataset.train),
        eval_data=str(dataset.holdout),
        label_column=LABEL_COLUMN,
        schema_path="",
        **artifacts,
    )

    assert (train_rows, eval_rows, anomaly_count) == (1600, 400, 0)
    assert fingerprint == "sha256:" + hashlib.sha256(dataset.train.read_bytes()).hexdigest()
    assert sorted(p.name for p in Path(artifacts["statistics"].path).iterdir()) == [
        "eval_stats.pb",
        "train_stats.pb",
    ]
    features = json.loads((Path(artifacts["schema"].path) / "features.json").read_text())
    assert features["label"] == LABEL_COLUMN
    assert {f["name"] for f in features["features"]} >= {"amount", "channel", "country"}
    assert json.loads(Path(artifacts["anomalies"].path).read_text()) == []
    assert artifacts["statistics"].metadata, "the artifacts' metadata carries row counts and kinds"


def test_a_missing_label_column_fails_before_tfdv_runs(dataset: DatasetFiles, tmp_path: Path) -> None:
    validate_data = build_component(IMAGES.validation).python_func
    with pytest.raises(DataError, match="no_such_label"):
        validate_data(
            train_data=str(dataset.train),
            eval_data=str(dataset.holdout),
            label_column="no_such_label",
            schema_path="",
            **outputs(tmp_path),
        )
