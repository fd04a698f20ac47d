"""Train the classifier: fit preprocessing, run DDP workers through ``torchrun``, package the model.

The parent process (the KFP task, or each node of a multi-node job) owns everything that is not the
training loop: reading data, fitting the scikit-learn preprocessor, tensorising once, launching
``torchrun`` with one worker per GPU (or ``num_processes`` CPU workers) on this node, and, on the
chief node, saving preprocessing + network as one MLflow pyfunc model with its per-epoch history.

On several nodes (a PyTorchJob's pods, a Vertex job's replicas: :mod:`launch_env`) every node runs
this same code: preprocessing is deterministic, so each node fits the same preprocessor on the same
data; ``torchrun`` joins the nodes through node 0's address.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.metrics import average_precision_score, roc_auc_score

from kfp_cicd.components.train.contract import load_entry_point
from kfp_cicd.components.train.launch_env import NodeTopology, discover_node
from kfp_cicd.data.tables import read_table
from kfp_cicd.errors import KfpCicdError
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame, label_vector

log = logging.getLogger(__name__)
WORKER_MODULE = "kfp_cicd.components.train.ddp_worker"
HISTORY_FILE = "training_history.json"  # written into the model directory, beside MLmodel
STANDALONE = NodeTopology(nnodes=1, node_rank=0, master_addr="127.0.0.1", master_port=0,
                          source="standalone")


class TrainingFailed(KfpCicdError, RuntimeError):
    """The distributed workers exited with an error."""


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters and launch settings; every field is a pipeline parameter."""

    epochs: int = 8
    batch_size: int = 512
    learning_rate: float = 2e-3
    hidden_units: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    weight_decay: float = 1e-4
    seed: int = 0
    num_processes: int = 2
    decision_threshold: float = 0.5
    max_restarts: int = 1
    checkpoint_dir: str = ""
    entry_point: str = ""
    entry_point_params: str = "{}"
    extra_torchrun_args: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 < self.learning_rate < 1:
            problems.append(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if self.num_processes < 1:
            problems.append(f"num_processes must be >= 1, got {self.num_processes}")
        if not 0 < self.decision_threshold < 1:
            problems.append(f"decision_threshold must be in (0, 1), got {self.decision_threshold}")
        if self.max_restarts < 0:
            problems.append(f"max_restarts must be >= 0, got {self.max_restarts}")
        try:
            extra = json.loads(self.entry_point_params or "{}")
            if not isinstance(extra, dict):
                problems.append(f"entry_point_params must be a JSON object, got {self.entry_point_params!r}")
        except ValueError as error:
            problems.append(f"entry_point_params is not valid JSON ({error}): {self.entry_point_params!r}")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    def to_json(self) -> str:
        """All fields as JSON (what a multi-node job's pods receive)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainingConfig:
        values = json.loads(text)
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"invalid training configuration: unknown fields {unknown}")
        for name in ("hidden_units", "extra_torchrun_args"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def worker_params(self) -> dict[str, Any]:
        """What every rank's training module gets as ``context.params``."""
        keys = ("epochs", "batch_size", "learning_rate", "hidden_units", "dropout",
                "weight_decay", "seed")
        values = asdict(self)
        return {**{k: values[k] for k in keys}, **json.loads(self.entry_point_params or "{}")}

    def worker_json(self) -> str:
        return json.dumps(self.worker_params())


@dataclass(frozen=True)
class TrainingResult:
    """What training produced: the model directory and metrics worth showing in the KFP UI."""

    model_dir: Path
    metrics: dict[str, float]
    history: list[dict]


@dataclass(frozen=True)
class PreparedData:
    """Raw features, the fitted preprocessor and the matrix it produced."""

    features: pd.DataFrame
    labels: np.ndarray
    preprocessor: ColumnTransformer
    matrix: np.ndarray
    spec: FeatureSpec


def processes_per_node(config: TrainingConfig) -> int:
    """One worker per visible GPU; on CPU the configured ``num_processes``."""
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return config.num_processes


def torchrun_command(data_dir: Path, output_dir: Path, config: TrainingConfig,
                     topology: NodeTopology = STANDALONE, checkpoint_dir: Path | None = None) -> list[str]:
    """``torchrun`` for this node (``--standalone`` on one node), running the DDP worker module."""
    if topology.standalone:
        placement = ["--standalone"]
    else:
        placement = [f"--nnodes={topology.nnodes}", f"--node-rank={topology.node_rank}",
                     f"--master-addr={topology.master_addr}", f"--master-port={topology.master_port}"]
    return [sys.executable, "-m", "torch.distributed.run", *placement,
            f"--nproc-per-node={processes_per_node(config)}", f"--max-restarts={config.max_restarts}",
            *config.extra_torchrun_args,
            "-m", WORKER_MODULE, "--data-dir", str(data_dir), "--output-dir", str(output_dir),
            "--checkpoint-dir", str(checkpoint_dir or output_dir / "checkpoints"),
            "--entry-point", config.entry_point, "--config", config.worker_json()]


def run_workers(data_dir: Path, output_dir: Path, config: TrainingConfig,
                topology: NodeTopology = STANDALONE, checkpoint_dir: Path | None = None,
                env: dict[str, str] | None = None) -> dict:
    """Launch this node's workers; stream their logs; return rank 0's ``history.json`` (chief only)."""
    command = torchrun_command(data_dir, output_dir, config, topology, checkpoint_dir)
    log.info("launching: %s", " ".join(command[:command.index("-m", 2) + 2]))
    completed = subprocess.run(command, check=False, env=env)
    if completed.returncode != 0:
        raise TrainingFailed(f"torchrun exited with code {completed.returncode} (after up to "
                             f"{config.max_restarts} restart(s)); see the worker logs above")
    if not topology.is_chief:
        return {}
    return json.loads((output_dir / "history.json").read_text())


def prepare_data(train_data: str, feature_spec: FeatureSpec) -> PreparedData:
    """Read the table, fit the preprocessor, transform to a float32 matrix."""
    frame = read_table(train_data)
    labels = label_vector(frame, feature_spec.label)
    features = feature_frame(frame, feature_spec)
    preprocessor = build_preprocessor(feature_spec).fit(features)
    matrix = np.asarray(preprocessor.transform(features), dtype=np.float32)
    log.info("training on %d rows, %d features after preprocessing, %.2f%% positive",
             len(labels), matrix.shape[1], 100 * labels.mean())
    return PreparedData(features=features, labels=labels, preprocessor=preprocessor, matrix=matrix,
                        spec=feature_spec)


def training_metrics(prepared: PreparedData, network: torch.nn.Module, summary: dict) -> dict[str, float]:
    """Training-set metrics and run facts for the KFP UI."""
    network.eval()
    with torch.no_grad():
        scores = torch.sigmoid(network(torch.from_numpy(prepared.matrix))).numpy()
    history = summary["history"]
    speeds = [h["rows_per_second"] for h in history if h.get("rows_per_second")]
    return {
        "train_loss": float(history[-1]["loss"]),
        "train_roc_auc": float(roc_auc_score(prepared.labels, scores)),
        "train_pr_auc": float(average_precision_score(prepared.labels, scores)),
        "train_rows": float(len(prepared.labels)),
        "world_size": float(summary["world_size"]),
        "epochs": float(len(history)),
        "train_rows_per_second": float(np.median(speeds)) if speeds else 0.0,
    }


def package_model(prepared: PreparedData, output_dir: Path, model_dir: str | Path,
                  config: TrainingConfig, summary: dict) -> TrainingResult:
    """Rebuild the network, load rank 0's weights, save the MLflow pyfunc model and its history."""
    # Imported here: launching workers (every node of a multi-node job) needs no MLflow, only the
    # chief packaging the model does.
    from kfp_cicd.model.packaging import save_classifier, training_numeric_ranges

    entry = load_entry_point(config.entry_point)
    network = entry.build_network(prepared.matrix.shape[1], config.worker_params())
    network.load_state_dict(torch.load(output_dir / "state_dict.pt", weights_only=True))
    metrics = training_metrics(prepared, network, summary)
    save_classifier(model_dir, preprocessor=prepared.preprocessor, network=network,
                    input_dim=prepared.matrix.shape[1], spec=prepared.spec,
                    example=prepared.features.head(5),
                    decision_threshold=config.decision_threshold,
                    numeric_ranges=training_numeric_ranges(prepared.features, prepared.spec),
                    metadata={"backend": summary["backend"], "device": summary["device"],
                              "world_size": summary["world_size"], "entry_point": entry.module})
    (Path(model_dir) / HISTORY_FILE).write_text(json.dumps(summary["history"], indent=2))
    log.info("saved MLflow pyfunc model to %s", model_dir)
    return TrainingResult(model_dir=Path(model_dir), metrics=metrics, history=summary["history"])


def train_classifier(train_data: str, feature_spec: FeatureSpec, model_dir: str | Path,
                     config: TrainingConfig, work_dir: str | Path | None = None,
                     topology: NodeTopology = STANDALONE) -> TrainingResult | None:
    """Fit and save the classifier; ``work_dir`` keeps tensors (temp if None).

    Checkpoints go to ``config.checkpoint_dir`` (default: inside the work directory). Returns None
    on a non-chief node of a multi-node job (node 0 packages the model).
    """
    load_entry_point(config.entry_point)  # fail before reading data when the module is wrong
    prepared = prepare_data(train_data, feature_spec)
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-train-") as scratch:
        work = Path(work_dir) if work_dir else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        torch.save(torch.from_numpy(prepared.matrix), work / "features.pt")
        torch.save(torch.from_numpy(prepared.labels.astype(np.float32)), work / "labels.pt")
        checkpoints = Path(config.checkpoint_dir) if config.checkpoint_dir else work / "checkpoints"
        summary = run_workers(work, work / "output", config, topology, checkpoints)
        if not topology.is_chief:
            log.info("node %d of %d done; node 0 packages the model", topology.node_rank, topology.nnodes)
            return None
        return package_model(prepared, work / "output", model_dir, config, summary)


def run_training_task(*, train_data: str, schema_dir: str, model_dir: str, config: TrainingConfig,
                      log_metric: Callable[[str, float], None],
                      metrics_path: str | None = None) -> dict[str, float] | None:
    """The KFP task body: read the schema's feature spec, train, report metrics.

    The metrics are also written as JSON to ``metrics_path`` (the Metrics artifact's file): an
    output artifact without a file counts as missing for kfp.local's task cache, which would then
    train again on a re-run with the same inputs. Returns None on a non-chief replica of a
    multi-replica (Vertex) job.
    """
    spec = FeatureSpec.load(schema_dir)
    topology = discover_node()
    result = train_classifier(train_data, spec, model_dir, config, topology=topology)
    if result is None:
        return None
    for name, value in result.metrics.items():
        log_metric(name, value)
    if metrics_path:
        Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
        Path(metrics_path).write_text(json.dumps(result.metrics, indent=2, sort_keys=True))
    return result.metrics
