"""deploy_model through its Python function (``python_func``), target "local": the real predictor on
loopback, smoke-tested with holdout rows, then promoted to champion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from component_testing import IMAGES, MODEL_NAME, output_artifact
from kfp.dsl import Artifact
from mlflow import MlflowClient

from kfp_cicd.components.deploy.component import build_component
from kfp_cicd.data.synthetic import DatasetFiles


def test_a_registered_version_serves_and_becomes_champion(
    dataset: DatasetFiles, registered: tuple[str, str], tmp_path: Path
) -> None:
    tracking_uri, version = registered
    deploy_model = build_component(IMAGES.runtime).python_func
    manifest = output_artifact(Artifact, tmp_path / "inference_service")

    endpoint, smoke_summary, rollout = deploy_model(
        tracking_uri=tracking_uri,
        model_name=MODEL_NAME,
        version=version,
        inference_service=manifest,
        target="local",
        eval_data=str(dataset.holdout),
        smoke_requests=5,
    )

    assert endpoint.startswith("http://127.0.0.1:")
    assert "passed its smoke test" in smoke_summary
    assert json.loads(rollout) == {
        "champion": version,
        "endpoint": endpoint,
        "outcome": "promoted-locally",
        "version": version,
    }
    champion = MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(MODEL_NAME, "champion")
    assert str(champion.version) == version
    service = yaml.safe_load(Path(manifest.path).read_text())
    assert service["kind"] == "InferenceService"
    assert manifest.metadata["target"] == "local" and manifest.metadata["version"] == version


def test_a_version_that_does_not_exist_is_refused(registered: tuple[str, str], tmp_path: Path) -> None:
    tracking_uri, _ = registered
    deploy_model = build_component(IMAGES.runtime).python_func
    with pytest.raises(Exception, match="version 99 not found"):
        deploy_model(
            tracking_uri=tracking_uri,
            model_name=MODEL_NAME,
            version="99",
            target="local",
            inference_service=output_artifact(Artifact, tmp_path / "inference_service"),
        )
    aliases = MlflowClient(tracking_uri=tracking_uri).get_registered_model(MODEL_NAME).aliases
    assert "champion" not in aliases
