"""The Vertex variant: train_model compiled as a multi-replica custom job with GPUs."""

from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl

from kfp_cicd.components.train.vertex import VertexTrainingCluster, build_vertex_component


def test_compiled_spec_shows_chief_and_worker_pools_with_gpus(tmp_path: Path) -> None:
    cluster = VertexTrainingCluster(
        replica_count=3,
        machine_type="a3-highgpu-8g",
        accelerator_type="NVIDIA_H100_80GB",
        accelerator_count=8,
    )
    train_op = build_vertex_component("ghcr.io/kfp-cicd/kfp-cicd-runtime:gpu", cluster)

    @dsl.pipeline(name="vertex-train")
    def pipeline(schema_uri: str = "gs://bucket/schema"):
        schema = dsl.importer(artifact_uri=schema_uri, artifact_class=dsl.Artifact)
        train_op(train_data="gs://bucket/train.csv", schema=schema.output, epochs=2)

    path = tmp_path / "spec.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    spec = yaml.safe_load(path.read_text())
    parameters = spec["components"]["comp-train-model"]["inputDefinitions"]["parameters"]
    pools = parameters["worker_pool_specs"]["defaultValue"]
    assert [pool["replica_count"] for pool in pools] == [1, 2], "one chief + two workers"
    for pool in pools:
        assert pool["machine_spec"] == {
            "machine_type": "a3-highgpu-8g",
            "accelerator_type": "NVIDIA_H100_80GB",
            "accelerator_count": 8,
        }
        assert pool["container_spec"]["image_uri"] == "ghcr.io/kfp-cicd/kfp-cicd-runtime:gpu"
    assert parameters["restart_job_on_worker_restart"]["defaultValue"] is True
    assert {"epochs", "entry_point", "checkpoint_dir", "max_restarts"} <= set(parameters)
    assert parameters["hidden_units"]["defaultValue"] == ""
    assert parameters["decision_threshold"]["defaultValue"] == -1.0
    assert parameters["early_stopping_patience"]["defaultValue"] == 5
    assert {"validation_fraction", "validation_folds", "batch_size", "learning_rate"} <= set(parameters)
    executors = spec["deploymentSpec"]["executors"]
    assert any("custom_job" in str(e.get("container", {}).get("command", "")) for e in executors.values())


def test_bad_cluster_options_are_named() -> None:
    with pytest.raises(ValueError, match="replica_count must be >= 1") as error:
        VertexTrainingCluster(replica_count=0, accelerator_type="nvidia-l4")
    assert "'nvidia-l4' must be a Vertex accelerator name" in str(error.value)
