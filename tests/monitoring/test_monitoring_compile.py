"""The monitoring pipeline compiles for Kubeflow and Vertex with the training pipeline nested under
the drift condition."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kfp import compiler

from kfp_cicd.images import ImageRefs
from kfp_cicd.pipelines.monitoring_pipeline import PIPELINE_NAME, build_monitoring_pipeline
from kfp_cicd.pipelines.training_pipeline import build_training_pipeline

IMAGES = ImageRefs(registry="registry.example/ml", tag="1.2.3")


def _compile(target: str, tmp_path: Path) -> list[dict]:
    path = tmp_path / f"{target}.yaml"
    compiler.Compiler().compile(build_monitoring_pipeline(IMAGES, target), str(path))
    return list(yaml.safe_load_all(path.read_text()))


@pytest.fixture(scope="module", params=["kubeflow", "vertex"])
def compiled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list]:
    return request.param, _compile(request.param, tmp_path_factory.mktemp(request.param))


def test_pipeline_is_named_and_declares_its_inputs(compiled: tuple[str, list]) -> None:
    spec = compiled[1][0]
    assert spec["pipelineInfo"]["name"] == PIPELINE_NAME
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert {"production_data", "train_data", "eval_data", "mlflow_tracking_uri"} <= set(inputs)
    assert inputs["drift_default_threshold"]["defaultValue"] == 0.15
    assert all(p.get("description") for p in inputs.values()), "the run form explains every field"


def test_training_pipeline_is_nested_under_the_drift_condition(compiled: tuple[str, list]) -> None:
    spec = compiled[1][0]
    root_tasks = spec["root"]["dag"]["tasks"]
    condition = next(t for name, t in root_tasks.items() if name.startswith("condition"))
    assert (
        condition["triggerPolicy"]["condition"]
        == "inputs.parameter_values['pipelinechannel--check-drift-Output'] == true"
    )
    branch = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    nested = branch["kfp-cicd-training"]
    nested_dag = spec["components"][nested["componentRef"]["name"]]["dag"]["tasks"]
    assert {"validate-data", "train-model", "evaluate-model"} <= set(nested_dag)
    assert branch["record-retraining-trigger"]["dependentTasks"] == ["kfp-cicd-training"]
    training_inputs = set(build_training_pipeline().component_spec.inputs)
    assert set(nested["inputs"]["parameters"]) <= training_inputs


def test_drift_check_runs_on_the_validation_image(compiled: tuple[str, list]) -> None:
    executors = compiled[1][0]["deploymentSpec"]["executors"]
    assert executors["exec-check-drift"]["container"]["image"] == IMAGES.validation
    assert executors["exec-record-retraining-trigger"]["container"]["image"] == IMAGES.runtime


def test_platform_config_per_target(compiled: tuple[str, list]) -> None:
    target, documents = compiled
    if target == "vertex":
        assert len(documents) == 1, "Vertex rejects the kfp-kubernetes platform spec"
        return
    executors = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in ("exec-check-drift", "exec-record-retraining-trigger", "exec-register-model"):
        assert executors[name]["secretAsEnv"][0]["secretName"] == "mlflow-credentials", name
