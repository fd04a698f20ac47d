"""Caching is chosen task by task in the committed Kubeflow and Vertex specs.

KFP reuses a cached task's outputs when its inputs match an earlier execution, and skips the task.
That is what a re-run after a failure should do for the deterministic steps (validate, whose inputs
name the champion's data contract, and train), and must never do for the steps with side effects or
that read the registry's current state: a skipped
register or deploy would leave the new model unregistered or unserved while the run says it
succeeded. Every container task of every spec must be in one of the two lists, so a new task gets a
deliberate choice too. (``kfp-cicd compile --check`` keeps the committed specs equal to the code.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

COMPILED = Path(__file__).resolve().parents[2] / "compiled"
SPECS = sorted([*COMPILED.glob("kubeflow/*.yaml"), *COMPILED.glob("vertex/*.yaml")])
# Pure functions of their inputs: reused on a re-run with the same inputs.
CACHED = {"validate-data", "train-model", "train-pytorchjob"}
# Side effects (registry aliases, serving traffic) or reads of the registry's current champion.
NEVER_CACHED = {
    "data-contract-reference",
    "evaluate-model",
    "register-model",
    "deploy-model",
    "check-drift",
    "monitoring-verdict",
    "record-retraining-trigger",
}


def container_tasks(spec: dict) -> dict[str, bool]:
    """Every task that runs a container, in every DAG of the spec -> its enableCache."""
    components = spec["components"]
    dags = [spec["root"]["dag"]] + [c["dag"] for c in components.values() if "dag" in c]
    tasks: dict[str, bool] = {}
    for dag in dags:
        for name, task in dag["tasks"].items():
            if "dag" in components[task["componentRef"]["name"]]:
                continue  # a condition branch or a nested pipeline: its own tasks are listed
            tasks[name] = bool((task.get("cachingOptions") or {}).get("enableCache", False))
    return tasks


def test_every_platform_and_pipeline_is_compiled() -> None:
    assert {f"{p.parent.name}/{p.name}" for p in SPECS} == {
        f"{platform}/{pipeline}_pipeline.yaml"
        for platform in ("kubeflow", "vertex")
        for pipeline in ("training", "monitoring")
    }


@pytest.mark.parametrize("path", SPECS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_task_caches_deliberately(path: Path) -> None:
    spec = next(yaml.safe_load_all(path.read_text()))
    tasks = container_tasks(spec)
    unclassified = set(tasks) - CACHED - NEVER_CACHED
    assert not unclassified, f"decide whether {sorted(unclassified)} may be cached (CACHED / NEVER_CACHED)"
    assert {name for name, cached in tasks.items() if cached} <= CACHED
    assert {name for name, cached in tasks.items() if not cached} <= NEVER_CACHED
    if path.stem == "training_pipeline":
        assert tasks == {
            "data-contract-reference": False,
            "validate-data": True,
            "train-model": True,
            "evaluate-model": False,
            "register-model": False,
            "deploy-model": False,
        }


def test_the_multi_node_training_launcher_is_cached_too(tmp_path: Path) -> None:
    from kfp import compiler

    from kfp_cicd.images import ImageRefs
    from kfp_cicd.pipelines.training_pipeline import Target, TrainingResources, build_training_pipeline

    pipeline = build_training_pipeline(
        ImageRefs(), Target.KUBEFLOW, TrainingResources(kubeflow_nodes=2, shared_pvc="shared")
    )
    compiler.Compiler().compile(pipeline, str(tmp_path / "spec.yaml"))
    tasks = container_tasks(next(yaml.safe_load_all((tmp_path / "spec.yaml").read_text())))
    launcher = set(tasks) - NEVER_CACHED - {"validate-data"}
    assert len(launcher) == 1 and tasks[launcher.pop()] is True
    assert not any(tasks[name] for name in ("evaluate-model", "register-model", "deploy-model"))
