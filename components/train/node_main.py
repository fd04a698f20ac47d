"""What every node of a multi-node job runs: ``python -m kfp_cicd.components.train.node_main …``.

A Kubeflow PyTorchJob's Master and Worker pods run this command (see
``kfp_cicd.components.train_pytorchjob``). Each node discovers its place (:mod:`launch_env`), fits
the same preprocessing, and starts ``torchrun`` with one worker per GPU joined through node 0. Node 0
writes the MLflow pyfunc model to ``--model-dir`` and the training metrics to ``--metrics-file`` on
the shared storage the launcher reads them back from.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from kfp_cicd.components.train.launch_env import discover_node
from kfp_cicd.components.train.training import TrainingConfig, train_classifier
from kfp_cicd.model.features import FeatureSpec

log = logging.getLogger("kfp_cicd.train.node")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train-data", required=True, help="CSV/Parquet (path on shared storage, gs://, s3://)"
    )
    parser.add_argument("--schema-dir", type=Path, required=True, help="validate_data's schema directory")
    parser.add_argument("--model-dir", type=Path, required=True, help="where node 0 writes the model")
    parser.add_argument("--metrics-file", type=Path, required=True, help="where node 0 writes metrics JSON")
    parser.add_argument("--config", required=True, help="TrainingConfig as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    topology = discover_node()
    log.info(
        "node %d of %d (%s), master %s:%d",
        topology.node_rank,
        topology.nnodes,
        topology.source,
        topology.master_addr,
        topology.master_port,
    )
    result = train_classifier(
        args.train_data,
        FeatureSpec.load(args.schema_dir),
        args.model_dir,
        TrainingConfig.from_json(args.config),
        topology=topology,
    )
    if result is not None:
        args.metrics_file.parent.mkdir(parents=True, exist_ok=True)
        args.metrics_file.write_text(json.dumps(result.metrics, indent=2))


if __name__ == "__main__":
    main()
