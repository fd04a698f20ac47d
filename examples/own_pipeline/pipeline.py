"""A pipeline of your own: kfp-cicd's data validation and training around a check your team wrote.

``validate_data_op`` and ``train_op`` come from the package (``pip install kfp-cicd``) and run on its
images; ``require_features`` is yours, a plain KFP lightweight component on any Python image.
Compile it for your cluster::

    python examples/own_pipeline/pipeline.py own_pipeline.yaml

or run it on this machine with ``kfp.local`` (see README.md beside this file).
"""

# No `from __future__ import annotations` here: KFP reads the annotations as types.
import sys

from kfp import compiler, dsl
from kfp.dsl import Artifact, Input

from kfp_cicd.components import train_op, validate_data_op

# Images elsewhere (a mirror, a private registry)? Bind the suite there instead:
#   from kfp_cicd.components import ops
#   suite = ops(registry="europe-docker.pkg.dev/my-project/ml", tag="0.1.0")
#   validate_data_op, train_op = suite.validate_data_op, suite.train_op


@dsl.component(base_image="python:3.11-slim")
def require_features(schema: Input[Artifact], required: str) -> int:
    """Fail unless the validated data has every feature the team's model must see.

    Args:
        schema: validate_data's schema directory; its features.json lists the features.
        required: Comma-separated feature names that must be present, e.g. "amount,country".

    Returns:
        The number of features in the data.
    """
    import json
    import pathlib

    spec = json.loads((pathlib.Path(schema.path) / "features.json").read_text())
    present = {feature["name"] for feature in spec["features"]}
    missing = [name.strip() for name in required.split(",") if name.strip() and name.strip() not in present]
    if missing:
        raise ValueError(
            f"the data lacks required features {missing}; it has {sorted(present)}. "
            "Add the columns to the data or change required_features."
        )
    return len(present)


@dsl.pipeline(name="own-pipeline", description="kfp-cicd validation and training around a team's own check.")
def own_pipeline(
    train_data: str,
    eval_data: str,
    label_column: str,
    required_features: str = "",
    epochs: int = 0,
    num_processes: int = 2,
):
    """Validate the data, check the team's required features, train.

    Args:
        train_data: Training data file (CSV or Parquet; local path, gs:// or s3://).
        eval_data: Evaluation (holdout) data file in the same format.
        label_column: Name of the label column.
        required_features: Comma-separated features the data must have ("" requires none).
        epochs: Most training epochs (0: chosen from the data set's size).
        num_processes: CPU training workers when no GPU is visible.
    """
    validation = validate_data_op(
        train_data=train_data, eval_data=eval_data, label_column=label_column, schema_path=""
    )
    check = require_features(schema=validation.outputs["schema"], required=required_features)
    train_op(
        train_data=train_data,
        schema=validation.outputs["schema"],
        epochs=epochs,
        num_processes=num_processes,
    ).after(check)


if __name__ == "__main__":
    compiler.Compiler().compile(own_pipeline, sys.argv[1] if len(sys.argv) > 1 else "own_pipeline.yaml")
