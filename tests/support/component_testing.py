"""Helpers of the tests beside each component (``components/<name>/tests/``): real inputs, kfp.local.

Component tests call a component two ways, both on small real inputs and without mocks:

- through ``build_component(image).python_func`` (the plain Python function KFP wraps), with
  :func:`input_artifact` / :func:`output_artifact` standing in for the artifacts KFP's executor
  would hand it;
- through ``kfp.local`` (:func:`kfp_local`), which runs the task in a subprocess exactly as a
  pipeline step would. kfp 2.17 runs a component with input artifacts only inside a pipeline, so
  :func:`run_with_imported_artifacts` wraps it in a one-task pipeline whose inputs come from
  ``dsl.importer``.

This module sits in ``tests/support`` (on pytest's ``pythonpath``), outside the component packages.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kfp import dsl

from kfp_cicd.data.synthetic import CATEGORICAL_FEATURES, LABEL_COLUMN, NUMERIC_FEATURES
from kfp_cicd.images import ImageRefs
from kfp_cicd.model.features import FeatureSpec

#: The images components are built on in these tests: the project's real references.
IMAGES = ImageRefs()
#: The synthetic data set's registered model name (kfp_cicd.data.synthetic.DEMO_PARAMETERS).
MODEL_NAME = "fraud-detector"


def synthetic_spec() -> FeatureSpec:
    """The feature spec of :mod:`kfp_cicd.data.synthetic`'s transactions (label ``is_fraud``)."""
    return FeatureSpec(LABEL_COLUMN, NUMERIC_FEATURES, CATEGORICAL_FEATURES)


def write_schema_dir(directory: Path, spec: FeatureSpec | None = None) -> Path:
    """A schema directory as validate_data writes it, reduced to what training reads: features.json."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "features.json").write_text(json.dumps((spec or synthetic_spec()).to_dict()))
    return directory


def input_artifact(cls: type[dsl.Artifact], path: Path, metadata: dict[str, Any] | None = None) -> Any:
    """An input artifact of class ``cls`` whose ``.path`` is ``path``."""
    return cls(name=path.name, uri=str(path), metadata=dict(metadata or {}))


def output_artifact(cls: type[dsl.Artifact], path: Path) -> Any:
    """An output artifact at ``path``: its parent exists, the path itself not (as KFP's executor does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return cls(name=path.name, uri=str(path), metadata={})


def quick_model(
    frame: pd.DataFrame, path: Path, spec: FeatureSpec | None = None, epochs: int = 20, seed: int = 0
) -> Path:
    """A real packaged classifier (fitted preprocessing + a small MLP) trained in-process in seconds."""
    import torch

    from kfp_cicd.model.network import TabularMLP
    from kfp_cicd.model.packaging import save_classifier, training_numeric_ranges
    from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame

    spec = spec or synthetic_spec()
    features = feature_frame(frame, spec)
    preprocessor = build_preprocessor(spec).fit(features)
    matrix = torch.from_numpy(np.asarray(preprocessor.transform(features), dtype=np.float32))
    labels = torch.from_numpy(spec.labels.encode_frame(frame).astype(np.float32))
    torch.manual_seed(seed)
    network = TabularMLP(matrix.shape[1], hidden_units=(16,), dropout=0.0)
    optimiser = torch.optim.Adam(network.parameters(), lr=0.01)
    loss = torch.nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        optimiser.zero_grad()
        loss(network(matrix), labels).backward()
        optimiser.step()
    return save_classifier(
        path,
        preprocessor=preprocessor,
        network=network.eval(),
        input_dim=matrix.shape[1],
        spec=spec,
        example=features.head(5),
        numeric_ranges=training_numeric_ranges(features, spec),
    )


@contextmanager
def kfp_local(pipeline_root: Path) -> Iterator[None]:
    """``kfp.local`` with the subprocess runner in this environment; the previous configuration after.

    The project's image names hold no "python", so kfp.local's warning about them is silenced.
    """
    from kfp import local
    from kfp.local import config as local_config

    previous = local_config.LocalExecutionConfig.instance
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root), raise_on_error=True
    )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*non-Python base image.*")
            yield
    finally:
        local_config.LocalExecutionConfig.instance = previous


@dataclass
class TaskOutputs:
    """What one kfp.local task wrote: its output parameters and its output artifacts' paths/metadata."""

    parameters: dict[str, Any]
    artifact_paths: dict[str, Path]
    artifact_metadata: dict[str, dict[str, Any]]


def read_task_outputs(pipeline_root: Path, task_name: str) -> TaskOutputs:
    """The outputs of task ``task_name`` of the (only) pipeline run under ``pipeline_root``."""
    (output_file,) = sorted(pipeline_root.glob(f"*/{task_name}/executor_output.json"))
    document = json.loads(output_file.read_text())
    paths, metadata = {}, {}
    for name, listing in document.get("artifacts", {}).items():
        artifact = listing["artifacts"][0]
        paths[name] = output_file.parent / name
        metadata[name] = artifact.get("metadata", {})
    return TaskOutputs(document.get("parameterValues", {}), paths, metadata)


def run_with_imported_artifacts(
    component: Any,
    pipeline_root: Path,
    artifacts: dict[str, tuple[type[dsl.Artifact], Path, dict[str, Any]]],
    **arguments: Any,
) -> TaskOutputs:
    """Run ``component`` alone under kfp.local, its input artifacts imported by ``dsl.importer``.

    ``artifacts`` maps an input name to (artifact class, local path, metadata); ``arguments`` are the
    component's parameters. Returns the task's outputs; a failing task raises RuntimeError.
    """
    task_name = component.name

    @dsl.pipeline(name=f"{task_name}-alone")
    def one_task():  # no return annotation: kfp reads "-> None" as an output
        imported = {
            name: dsl.importer(artifact_uri=str(path), artifact_class=cls, metadata=metadata).output
            for name, (cls, path, metadata) in artifacts.items()
        }
        component(**imported, **arguments)

    with kfp_local(pipeline_root):
        one_task()
    return read_task_outputs(pipeline_root, task_name)
