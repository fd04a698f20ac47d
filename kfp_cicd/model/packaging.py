"""Save preprocessing + network as one MLflow pyfunc model directory (the ``Model`` artifact)."""

from __future__ import annotations

import json
import tempfile
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
import skops.io
import torch
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from sklearn.compose import ColumnTransformer

from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.integrity import verify_model, write_checksums

PYFUNC_SOURCE = Path(__file__).with_name("pyfunc_model.py")
RUNTIME_PACKAGES = ("mlflow", "torch", "scikit-learn", "skops", "pandas", "numpy")
# Config fields models packaged before them lack; update_model_config may add them to such models.
OPTIONAL_CONFIG_FIELDS = frozenset({"calibration", "threshold_rule"})


def pip_requirements() -> list[str]:
    """Exact pins of what loading the model needs (never inferred: inference picks up extras)."""
    return [f"{name}=={version(name).split('+')[0]}" for name in RUNTIME_PACKAGES]


def model_signature(frame: pd.DataFrame, spec: FeatureSpec) -> ModelSignature:
    """Input columns typed from the training frame; outputs probability and 0/1 prediction."""

    def column_type(column: str) -> str:
        if column in spec.categorical:
            return "string"
        return "long" if pd.api.types.is_integer_dtype(frame[column]) else "double"

    inputs = Schema([ColSpec(column_type(c), c) for c in spec.columns])
    outputs = Schema([ColSpec("double", "probability"), ColSpec("long", "prediction")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def export_network(network: torch.nn.Module, input_dim: int, path: Path) -> None:
    """``torch.export`` the network with a dynamic batch dimension, on CPU, in eval mode."""
    network = network.to("cpu").eval()
    example = torch.zeros(2, input_dim, dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1)
    exported = torch.export.export(network, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(exported, str(path))


def training_numeric_ranges(features: pd.DataFrame, spec: FeatureSpec) -> dict[str, list[float]]:
    """[min, max] of each numeric feature in the training data: the domain serving compares with."""
    return {column: [float(features[column].min()), float(features[column].max())] for column in spec.numeric}


def save_classifier(
    path: str | Path,
    *,
    preprocessor: ColumnTransformer,
    network: torch.nn.Module,
    input_dim: int,
    spec: FeatureSpec,
    example: pd.DataFrame,
    decision_threshold: float = 0.5,
    metadata: dict | None = None,
    numeric_ranges: dict[str, list[float]] | None = None,
    calibration: dict | None = None,
    threshold_rule: str = "",
) -> Path:
    """Write an MLflow pyfunc model at ``path`` (which must not exist or be an empty directory).

    ``example`` is a few rows of raw feature columns; it types the signature and is stored as the
    input example users see in MLflow. ``calibration`` (e.g. ``{"method": "platt", "slope": a,
    "intercept": b}``) maps the network's logit ``z`` to ``sigmoid(a * z + b)`` at scoring time
    (None: the plain sigmoid); ``threshold_rule`` says how ``decision_threshold`` was chosen.
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"model path {path} is not empty")
    if path.exists():
        path.rmdir()  # mlflow insists on creating the directory itself
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-model-") as staging:
        staging_dir = Path(staging)
        artifacts = {
            "preprocessor": staging_dir / "preprocessor.skops",
            "network": staging_dir / "network.pt2",
            "config": staging_dir / "config.json",
        }
        skops.io.dump(preprocessor, artifacts["preprocessor"])
        export_network(network, input_dim, artifacts["network"])
        config = {
            "label": spec.label,
            "labels": spec.labels.to_dict(),
            "numeric": list(spec.numeric),
            "categorical": list(spec.categorical),
            "decision_threshold": float(decision_threshold),
            "threshold_rule": threshold_rule or f"decision_threshold={decision_threshold:g} given",
            "calibration": calibration or {"method": "none"},
            "numeric_ranges": numeric_ranges or {},
        }
        artifacts["config"].write_text(json.dumps(config, indent=2))
        mlflow.pyfunc.save_model(
            path=str(path),
            python_model=str(PYFUNC_SOURCE),
            artifacts={name: str(p) for name, p in artifacts.items()},
            signature=model_signature(example, spec),
            input_example=example.head(3),
            pip_requirements=pip_requirements(),
            metadata=metadata,
        )
    write_checksums(path)
    return path


def update_model_config(model_dir: str | Path, **changes: object) -> dict:
    """Change the packaged model's ``config.json`` (e.g. ``decision_threshold``) and re-checksum.

    The directory is verified first, so a corrupted model is never re-blessed with fresh checksums.
    Only existing fields change, except :data:`OPTIONAL_CONFIG_FIELDS`, which older models lack
    (e.g. ``threshold_rule`` beside a new ``decision_threshold``).
    """
    model_dir = Path(model_dir)
    verify_model(model_dir)
    config_path = model_dir / "artifacts" / "config.json"
    config = json.loads(config_path.read_text())
    unknown = sorted(set(changes) - set(config) - OPTIONAL_CONFIG_FIELDS)
    if unknown:
        raise KeyError(f"model config has no fields {unknown}; fields are {sorted(config)}")
    config.update(changes)
    config_path.write_text(json.dumps(config, indent=2))
    write_checksums(model_dir)
    return config
