"""Every compiled task that asks for a GPU runs an image whose definition installs a CUDA torch.

Fast (no container tool): what torch an image carries is derived from its definition files, the
Dockerfile's ``ARG`` defaults with the variant's build arguments (kfp_cicd/images.py) and the torch pin
of the lock files it installs. A ``+cpu`` pin, the CPU wheel index (pip prefers its ``+cpu`` build) or
``TORCH_VARIANT=cpu`` (the build asserts ``torch.version.cuda is None``) make a CPU-only torch.

A task asks for a GPU when, in a compiled spec:
- Kubeflow or single-replica Vertex: its executor's container has ``resources.accelerator``;
- Vertex custom job: a worker pool's ``machine_spec`` has an ``accelerator_type`` (its image is the pool's
  ``container_spec.image_uri``; the executor itself is Google's launcher);
- Kubeflow multi-node: the PyTorchJob launcher's ``gpus_per_worker`` > 0 (the pods run ``worker_image``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from kfp_cicd.images import CUDA, DOCKERFILES, ImageBuild, ImageRefs

REPO_ROOT = Path(__file__).resolve().parents[2]
REGISTRY, TAG = "registry.example/ml", "9.9.9"
REFS = ImageRefs(REGISTRY, TAG)
CPU_WHEEL_INDEX = re.compile(r"/whl/cpu/?$")
# compile options -> whether the training task asks for GPUs
CONFIGURATIONS = {
    "default (1 GPU, 2 Vertex replicas)": ([], True),
    "single Vertex replica, 2 GPUs": (["--gpus", "2", "--vertex-replicas", "1"], True),
    "Kubeflow PyTorchJob, 3 nodes x 4 GPUs": (
        ["--gpus", "4", "--kubeflow-nodes", "3", "--shared-pvc", "training-rwx"],
        True,
    ),
    "other accelerators": (
        ["--kubeflow-accelerator", "amd.com/gpu", "--vertex-accelerator", "NVIDIA_H100_80GB"],
        True,
    ),
    "CPU only (--gpus 0)": (["--gpus", "0"], False),
}


def dockerfile_args(dockerfile: str) -> dict[str, str]:
    """``ARG NAME=default`` of every stage (the project's Dockerfiles repeat an ARG with one default)."""
    text = (REPO_ROOT / dockerfile).read_text()
    return {name: value for name, value in re.findall(r"(?m)^ARG (\w+)=(.*)$", text)}


def torch_pin(dockerfile: str) -> str | None:
    """The ``torch==`` pin of the lock files the Dockerfile installs (``-r LOCK``), or None: no torch."""
    text = (REPO_ROOT / dockerfile).read_text()
    for lock in re.findall(r"-r (\S+\.lock)", text):
        for line in (REPO_ROOT / lock).read_text().splitlines():
            name, sep, version = line.strip().partition("==")
            if sep and name.lower() == "torch":
                return version
    return None


def torch_build(image: ImageBuild) -> str:
    """``cuda``, ``cpu`` or ``none``: the torch that ``make images`` installs in ``image``."""
    pin = torch_pin(image.dockerfile)
    if pin is None:
        return "none"
    args = dockerfile_args(image.dockerfile) | image.build_args
    cpu_only = (
        pin.endswith("+cpu")
        or bool(CPU_WHEEL_INDEX.search(args.get("TORCH_INDEX_URL", "").strip()))
        or args.get("TORCH_VARIANT", "cuda") != "cuda"
    )
    return "cpu" if cpu_only else "cuda"


@dataclass(frozen=True)
class GpuTask:
    where: str
    image: str


def gpu_tasks(spec: dict) -> list[GpuTask]:
    """Every place of a compiled pipeline spec that runs an image on a GPU."""
    found = []
    for name, executor in spec["deploymentSpec"]["executors"].items():
        container = executor.get("container", {})
        accelerator = container.get("resources", {}).get("accelerator", {})
        if int(accelerator.get("resourceCount") or accelerator.get("count") or 0) > 0:
            found.append(GpuTask(f"{name} (container accelerator)", container["image"]))

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            machine = node.get("machine_spec")
            if isinstance(machine, dict) and "container_spec" in node and machine.get("accelerator_type"):
                found.append(GpuTask(f"{path} (worker pool)", node["container_spec"]["image_uri"]))
            gpus, image = node.get("gpus_per_worker"), node.get("worker_image")
            if isinstance(gpus, dict) and isinstance(image, dict):
                count = gpus.get("runtimeValue", {}).get("constant", 0)
                if int(count) > 0:
                    found.append(GpuTask(f"{path} (PyTorchJob pods)", image["runtimeValue"]["constant"]))
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}[{index}]")

    walk(spec, "spec")
    return found


def cpu_only_gpu_tasks(spec: dict, refs: ImageRefs = REFS) -> list[str]:
    """GPU tasks whose image installs no CUDA torch (or is not one of the project's images)."""
    builds = {build.ref: build for build in refs.builds()}
    problems = []
    for task in gpu_tasks(spec):
        build = builds.get(task.image)
        verdict = torch_build(build) if build else "not one of the project's images"
        if verdict != "cuda":
            problems.append(f"{task.where} runs {task.image}: {verdict}")
    return problems


def compile_specs(out_dir: Path, options: list[str]) -> dict[str, dict]:
    """``kfp-cicd compile`` into ``out_dir``; the pipeline specs by relative path."""
    from kfp_cicd.cli import main

    command = ["compile", "--image-registry", REGISTRY, "--image-tag", TAG, "--output-dir", str(out_dir)]
    assert main([*command, *options]) == 0
    return {
        str(path.relative_to(out_dir)): next(yaml.safe_load_all(path.read_text()))
        for target in ("kubeflow", "vertex")
        for path in sorted((out_dir / target).glob("*.yaml"))
    }


def test_image_definitions_tell_cpu_from_cuda_torch() -> None:
    verdicts = {build.key: torch_build(build) for build in REFS.builds()}
    assert verdicts == {
        "runtime": "cpu",  # TORCH_INDEX_URL defaults to the CPU wheel index
        "validation": "none",  # TFDV's environment has no torch
        "predictor": "cpu",  # serving.lock pins torch==X+cpu
        f"runtime-{CUDA.name}": "cuda",  # no extra index: PyPI's default Linux wheel
    }
    runtime = REFS.builds()[0]
    for wrong in (
        {"TORCH_VARIANT": "cuda", "TORCH_INDEX_URL": "https://download.pytorch.org/whl/cpu"},
        {"TORCH_VARIANT": "cpu", "TORCH_INDEX_URL": ""},
    ):
        assert torch_build(ImageBuild("runtime", "x", "r", runtime.dockerfile, wrong)) == "cpu", wrong


@pytest.mark.parametrize("configuration", sorted(CONFIGURATIONS))
def test_gpu_tasks_run_cuda_images_and_the_rest_cpu_images(configuration: str, tmp_path: Path) -> None:
    options, asks_for_gpus = CONFIGURATIONS[configuration]
    specs = compile_specs(tmp_path, options)
    assert sorted(specs) == [
        "kubeflow/monitoring_pipeline.yaml",
        "kubeflow/training_pipeline.yaml",
        "vertex/monitoring_pipeline.yaml",
        "vertex/training_pipeline.yaml",
    ]
    cpu_images = {REFS.runtime, REFS.validation, REFS.predictor}
    for path, spec in specs.items():
        gpu = gpu_tasks(spec)
        assert bool(gpu) == asks_for_gpus, f"{path}: GPU tasks {gpu}"
        assert cpu_only_gpu_tasks(spec) == [], path
        for name, executor in spec["deploymentSpec"]["executors"].items():
            image = executor["container"]["image"]
            if any(task.where.startswith(f"{name} ") for task in gpu) or "pipeline-components" in image:
                continue  # a GPU task, or Google's custom-job launcher (its worker pools are checked)
            assert image in cpu_images, f"{path}: {name} asks for no GPU but runs {image}"


class CpuTrainingImages(ImageRefs):
    """The bug this guards against: GPU training on the CPU runtime image."""

    def training(self, gpus: int) -> str:
        return self.runtime


FAILING_LAYOUTS = {
    "kubeflow": {"gpus": 1},
    "kubeflow-pytorchjob": {"gpus": 2, "kubeflow_nodes": 2, "shared_pvc": "training-rwx"},
    "vertex": {"gpus": 1, "vertex_replica_count": 1},
    "vertex-custom-job": {"gpus": 1, "vertex_replica_count": 2},
}


@pytest.mark.parametrize("layout", sorted(FAILING_LAYOUTS))
def test_the_check_fails_for_a_gpu_task_on_the_cpu_image(layout: str, tmp_path: Path) -> None:
    from kfp import compiler

    from kfp_cicd.pipelines.training_pipeline import TrainingResources, build_training_pipeline

    resources = TrainingResources(**FAILING_LAYOUTS[layout])
    target = layout.split("-")[0]
    pipeline = build_training_pipeline(CpuTrainingImages(REGISTRY, TAG), target, resources)
    compiler.Compiler().compile(pipeline, str(tmp_path / "spec.yaml"))
    spec = next(yaml.safe_load_all((tmp_path / "spec.yaml").read_text()))
    problems = cpu_only_gpu_tasks(spec)
    assert problems and all(f"runs {REFS.runtime}: cpu" in p for p in problems), problems


def test_unknown_image_on_a_gpu_task_is_reported() -> None:
    spec = {
        "deploymentSpec": {
            "executors": {
                "exec-x": {
                    "container": {
                        "image": "docker.io/someone/torch:latest",
                        "resources": {"accelerator": {"count": "1"}},
                    }
                }
            }
        }
    }
    assert cpu_only_gpu_tasks(spec) == [
        "exec-x (container accelerator) runs docker.io/someone/torch:latest: not one of the project's images"
    ]


def test_every_dockerfile_is_judged() -> None:
    assert {build.dockerfile for build in REFS.builds()} == set(DOCKERFILES.values())
