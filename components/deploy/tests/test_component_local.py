"""deploy_model alone under kfp.local, target "local": serve, smoke-test, promote."""

from __future__ import annotations

import json
from pathlib import Path

from component_testing import IMAGES, MODEL_NAME, kfp_local
from mlflow import MlflowClient

from kfp_cicd.components.deploy.component import build_component
from kfp_cicd.data.synthetic import DatasetFiles


def test_the_task_deploys_locally_and_moves_champion(
    dataset: DatasetFiles, registered: tuple[str, str], tmp_path: Path
) -> None:
    tracking_uri, version = registered
    with kfp_local(tmp_path / "root"):
        task = build_component(IMAGES.runtime)(
            tracking_uri=tracking_uri,
            model_name=MODEL_NAME,
            version=version,
            target="local",
            eval_data=str(dataset.holdout),
            smoke_requests=5,
        )

    assert task.outputs["endpoint"].startswith("http://127.0.0.1:")
    assert json.loads(task.outputs["rollout"])["outcome"] == "promoted-locally"
    assert "kind: InferenceService" in Path(task.outputs["inference_service"].path).read_text()
    champion = MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(MODEL_NAME, "champion")
    assert str(champion.version) == version
