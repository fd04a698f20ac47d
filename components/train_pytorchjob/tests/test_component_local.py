"""train_model_pytorchjob alone under kfp.local: the launcher task drives a PyTorchJob to Succeeded."""

from __future__ import annotations

from pathlib import Path

from component_testing import IMAGES, run_with_imported_artifacts
from fake_kubernetes_api import FakeKubernetesApiServer
from kfp.dsl import Artifact

from kfp_cicd.components.train_pytorchjob.component import build_component
from kfp_cicd.data.synthetic import DatasetFiles


def test_the_launcher_task_hands_the_model_back(
    cluster: FakeKubernetesApiServer,
    dataset: DatasetFiles,
    schema_dir: Path,
    tmp_path: Path,
    job_settings: dict[str, object],
) -> None:
    outputs = run_with_imported_artifacts(
        build_component(IMAGES.runtime),
        tmp_path / "root",
        {"schema": (Artifact, schema_dir, {})},
        train_data=str(dataset.train),
        job_name="component-local",
        **job_settings,
    )

    assert outputs.artifact_metadata["model"]["pytorchjob"] == "ml/component-local"
    assert (outputs.artifact_paths["model"] / "MLmodel").is_file()
    assert outputs.artifact_metadata["metrics"]["world_size"] == 1
    assert [body["metadata"]["name"] for body in cluster.created_bodies()] == ["component-local"]
