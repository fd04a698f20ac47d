"""Every task of the compiled Kubeflow specs runs as the images' non-root user; Vertex specs carry none."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kfp_cicd.pipelines.training_pipeline import IMAGE_USER

COMPILED = Path(__file__).resolve().parents[2] / "compiled"


def _documents(path: Path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text()))


@pytest.mark.parametrize("name", ["training_pipeline", "monitoring_pipeline"])
def test_every_kubeflow_executor_runs_as_the_image_user(name: str) -> None:
    pipeline_spec, platform_spec = _documents(COMPILED / "kubeflow" / f"{name}.yaml")
    executors = set(pipeline_spec["deploymentSpec"]["executors"])
    platform = platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(platform) == executors, "every executor needs a platform entry with its security context"
    for executor, settings in platform.items():
        context = settings.get("securityContext", {})
        assert context.get("runAsNonRoot") is True, executor
        assert int(context.get("runAsUser", -1)) == IMAGE_USER, executor
        assert int(context.get("runAsGroup", -1)) == IMAGE_USER, executor


@pytest.mark.parametrize("name", ["training_pipeline", "monitoring_pipeline"])
def test_vertex_specs_carry_no_platform_spec(name: str) -> None:
    documents = _documents(COMPILED / "vertex" / f"{name}.yaml")
    assert len(documents) == 1 and "platforms" not in documents[0]
