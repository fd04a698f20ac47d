"""examples/own_pipeline/: a user's pipeline of two suite ops and a component of their own compiles
and runs through kfp.local (TFDV in its own environment, torchrun on CPU), and the user's own check
stops it before training."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from component_testing import kfp_local
from kfp import compiler

from kfp_cicd.components import ops
from kfp_cicd.data.synthetic import (
    CATEGORICAL_FEATURES,
    LABEL_COLUMN,
    NUMERIC_FEATURES,
    DatasetFiles,
    generate_dataset,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_pipeline"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("own_pipeline_example", EXAMPLE / "pipeline.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example() -> ModuleType:
    return _load_example()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetFiles:
    return generate_dataset(tmp_path_factory.mktemp("own-pipeline-data"), rows=1000, seed=1)


def _run_dir(root: Path) -> Path:
    (run_dir,) = root.iterdir()  # kfp.local: <root>/<pipeline name>-<timestamp>/<task>/<output>
    return run_dir


def test_the_example_compiles_with_the_suites_images_and_the_users_own(
    example: ModuleType, tmp_path: Path
) -> None:
    path = tmp_path / "own_pipeline.yaml"
    compiler.Compiler().compile(example.own_pipeline, str(path))

    executors = yaml.safe_load(path.read_text())["deploymentSpec"]["executors"]
    images = {name: executor["container"]["image"] for name, executor in executors.items()}
    suite = ops()
    assert images == {
        "exec-validate-data": suite.validate_data_op.component_spec.implementation.container.image,
        "exec-require-features": "python:3.11-slim",
        "exec-train-model": suite.train_op.component_spec.implementation.container.image,
    }


@pytest.mark.slow
def test_the_example_runs_through_kfp_local(
    example: ModuleType, dataset: DatasetFiles, tmp_path: Path
) -> None:
    with kfp_local(tmp_path / "root"):
        example.own_pipeline(
            train_data=str(dataset.train),
            eval_data=str(dataset.holdout),
            label_column=LABEL_COLUMN,
            required_features="amount,country",
            epochs=2,
            num_processes=1,
        )

    run_dir = _run_dir(tmp_path / "root")
    assert sorted(p.name for p in run_dir.iterdir()) == ["require-features", "train-model", "validate-data"]
    features = json.loads((run_dir / "validate-data" / "schema" / "features.json").read_text())
    assert features["label"] == LABEL_COLUMN
    assert (run_dir / "train-model" / "model" / "MLmodel").is_file()
    assert json.loads((run_dir / "train-model" / "metrics").read_text())["epochs"] == 2
    own = json.loads((run_dir / "require-features" / "executor_output.json").read_text())
    assert own["parameterValues"]["Output"] == len(NUMERIC_FEATURES) + len(CATEGORICAL_FEATURES)


@pytest.mark.slow
def test_the_users_own_check_stops_the_pipeline_before_training(
    example: ModuleType, dataset: DatasetFiles, tmp_path: Path
) -> None:
    with kfp_local(tmp_path / "root"), pytest.raises(RuntimeError, match="require-features"):
        example.own_pipeline(
            train_data=str(dataset.train),
            eval_data=str(dataset.holdout),
            label_column=LABEL_COLUMN,
            required_features="amount,loyalty_tier",
        )

    assert not (_run_dir(tmp_path / "root") / "train-model").exists()
