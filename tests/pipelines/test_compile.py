"""Compiled specs: strict protobuf loading, target-specific config, images, freshness checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kfp_cicd.cli import main
from kfp_cicd.compiler import compile_all, compile_components, stale_specs
from kfp_cicd.images import ImageRefs

IMAGES = ImageRefs(registry="registry.example.com/team", tag="9.9.9")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    output = tmp_path_factory.mktemp("compiled")
    compile_all(output, IMAGES)
    return {
        target: list(yaml.safe_load_all((output / target / "training_pipeline.yaml").read_text()))
        for target in ("kubeflow", "vertex")
    }


def _strict(document: dict, message: type) -> object:
    return json_format.ParseDict(document, message(), ignore_unknown_fields=False)


def test_kubeflow_spec_is_a_pipeline_spec_plus_platform_spec(compiled: dict) -> None:
    pipeline_doc, platform_doc = compiled["kubeflow"]
    spec = _strict(pipeline_doc, pipeline_spec_pb2.PipelineSpec)
    platform = _strict(platform_doc, pipeline_spec_pb2.PlatformSpec)
    assert spec.pipeline_info.name == "kfp-cicd-training"
    kubernetes = json_format.MessageToDict(platform.platforms["kubernetes"])
    executors = kubernetes["deploymentSpec"]["executors"]
    assert executors["exec-train-model"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    for task in ("exec-register-model", "exec-deploy-model"):
        secret = executors[task]["secretAsEnv"][0]
        assert secret["secretName"] == "mlflow-credentials" and secret["optional"] is True


def test_kubeflow_training_task_requests_a_gpu(compiled: dict) -> None:
    spec = _strict(compiled["kubeflow"][0], pipeline_spec_pb2.PipelineSpec)
    deployment = json_format.MessageToDict(spec.deployment_spec)
    resources = deployment["executors"]["exec-train-model"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "1"


def test_vertex_spec_is_a_single_document_without_platform_spec(compiled: dict) -> None:
    assert len(compiled["vertex"]) == 1
    _strict(compiled["vertex"][0], pipeline_spec_pb2.PipelineSpec)


def test_vertex_training_is_a_custom_job_with_gpu_worker_pools(compiled: dict) -> None:
    spec = compiled["vertex"][0]
    parameters = spec["components"]["comp-train-model"]["inputDefinitions"]["parameters"]
    pools = parameters["worker_pool_specs"]["defaultValue"]
    assert len(pools) == 2, "chief pool + worker pool"
    for pool in pools:
        assert pool["machine_spec"]["accelerator_type"] == "NVIDIA_L4"
        assert pool["machine_spec"]["accelerator_count"] == 1
        assert pool["container_spec"]["image_uri"] == IMAGES.runtime_cuda  # GPU pools: the CUDA image
    launcher = spec["deploymentSpec"]["executors"]["exec-train-model"]["container"]["image"]
    assert launcher.startswith("gcr.io/ml-pipeline/google-cloud-pipeline-components:")


def test_kubeflow_multi_node_trains_as_a_pytorchjob_on_a_shared_pvc(tmp_path: Path) -> None:
    from kfp import compiler

    from kfp_cicd.pipelines.training_pipeline import TrainingResources, build_training_pipeline

    resources = TrainingResources(gpus=4, kubeflow_nodes=3, shared_pvc="training-rwx")
    pipeline = build_training_pipeline(IMAGES, "kubeflow", resources)
    compiler.Compiler().compile(pipeline, str(tmp_path / "multi.yaml"))
    pipeline_doc, platform_doc = yaml.safe_load_all((tmp_path / "multi.yaml").read_text())
    train = pipeline_doc["root"]["dag"]["tasks"]["train-model-pytorchjob"]["inputs"]["parameters"]
    assert train["workers"]["runtimeValue"]["constant"] == 2
    assert train["gpus_per_worker"]["runtimeValue"]["constant"] == 4
    executor = platform_doc["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executor["exec-train-model-pytorchjob"]["pvcMount"][0]["mountPath"] == "/mnt/shared"
    container = pipeline_doc["deploymentSpec"]["executors"]["exec-train-model-pytorchjob"]["container"]
    assert "accelerator" not in container.get("resources", {}), "the launcher itself needs no GPU"
    with pytest.raises(ValueError, match="needs shared_pvc"):
        TrainingResources(kubeflow_nodes=2)


@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_every_task_runs_on_the_projects_images_without_pip_installs(compiled: dict, target: str) -> None:
    executors = compiled[target][0]["deploymentSpec"]["executors"]
    for name, executor in executors.items():
        container = executor["container"]
        if target == "vertex" and name == "exec-train-model":
            continue  # the custom-job launcher; its worker pools run our image (tested above)
        on_validation_image = name in ("exec-validate-data", "exec-data-contract-reference")
        expected = IMAGES.validation if on_validation_image else IMAGES.runtime
        if name == "exec-train-model":
            expected = IMAGES.runtime_cuda  # it asks for a GPU (tests/images/test_gpu_images.py)
        assert container["image"] == expected, name
        assert "pip install" not in " ".join(container["command"]), f"{name} would pip-install kfp"


def test_parameters_carry_descriptions_for_the_kfp_ui(compiled: dict) -> None:
    parameters = compiled["kubeflow"][0]["root"]["inputDefinitions"]["parameters"]
    assert "Training data" in parameters["train_data"]["description"]
    assert parameters["epochs"]["parameterType"] == "NUMBER_INTEGER"
    assert parameters["min_roc_auc"]["defaultValue"] == 0.6
    assert "defaultValue" not in parameters["label_column"], "the label is always the user's to name"


def test_registration_and_deployment_sit_behind_the_gate(compiled: dict) -> None:
    dag = compiled["kubeflow"][0]["root"]["dag"]["tasks"]
    condition = dag["condition-1"]["triggerPolicy"]["condition"]
    assert "evaluate-model-Output" in condition and condition.endswith("== true")
    branch = compiled["kubeflow"][0]["components"]["comp-condition-1"]["dag"]["tasks"]
    assert set(branch) == {"register-model", "deploy-model"}


def test_compilation_is_deterministic(tmp_path: Path) -> None:
    first = [p.read_bytes() for p in compile_all(tmp_path / "a", IMAGES)]
    second = [p.read_bytes() for p in compile_all(tmp_path / "b", IMAGES)]
    assert first == second


def test_committed_specs_are_fresh(repo_root: Path) -> None:
    assert stale_specs(repo_root / "compiled") == []


def test_check_names_a_stale_spec_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    compile_all(tmp_path)
    compile_components(tmp_path)
    assert main(["compile", "--check", "--output-dir", str(tmp_path)]) == 0
    stale = tmp_path / "vertex" / "training_pipeline.yaml"
    stale.write_text(stale.read_text().replace("epochs", "epochz"))
    (tmp_path / "kubeflow" / "training_pipeline.yaml").unlink()
    assert main(["compile", "--check", "--output-dir", str(tmp_path)]) == 1
    errors = capsys.readouterr().err
    assert str(stale) in errors and "kubeflow/training_pipeline.yaml" in errors
