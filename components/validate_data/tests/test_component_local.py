"""validate_data alone under kfp.local, against the curated schema it ships (schemas/card_fraud.pbtxt)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from component_testing import IMAGES, kfp_local

from kfp_cicd.components.validate_data.component import build_component
from kfp_cicd.data.synthetic import LABEL_COLUMN, DatasetFiles

CURATED_SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "card_fraud.pbtxt"


def test_generated_data_validates_against_the_curated_schema(dataset: DatasetFiles, tmp_path: Path) -> None:
    with kfp_local(tmp_path / "root"):
        task = build_component(IMAGES.validation)(
            train_data=str(dataset.train),
            eval_data=str(dataset.holdout),
            label_column=LABEL_COLUMN,
            schema_path=str(CURATED_SCHEMA),
        )

    assert task.outputs["anomaly_count"] == 0
    assert task.outputs["train_rows"] + task.outputs["eval_rows"] == 2000
    assert task.outputs["schema"].metadata["inferred"] is False, "the given schema is used, not inferred"
    schema = (Path(task.outputs["schema"].path) / "schema.pbtxt").read_text()
    assert 'default_environment: "TRAINING"' in schema and 'default_environment: "SERVING"' in schema
    assert json.loads(Path(task.outputs["anomalies"].path).read_text()) == []


def test_bad_evaluation_data_fails_the_task(dataset: DatasetFiles, tmp_path: Path) -> None:
    import pandas as pd

    bad = pd.read_csv(dataset.holdout).drop(columns=["country"])
    bad.loc[bad.index[:5], "channel"] = "teleport"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with kfp_local(tmp_path / "root"), pytest.raises(RuntimeError, match="validate-data"):
        build_component(IMAGES.validation)(
            train_data=str(dataset.train),
            eval_data=str(tmp_path / "bad.csv"),
            label_column=LABEL_COLUMN,
            schema_path=str(CURATED_SCHEMA),
        )
