"""Train the classifier: fit preprocessing, run DDP workers through ``torchrun``, package the model.

The parent process (the KFP task) owns everything that is not the training loop: reading data,
fitting the scikit-learn preprocessor, tensorising once, launching ``torchrun`` with one worker per
GPU (or ``num_processes`` CPU workers), and saving preprocessing + network as one MLflow pyfunc
model.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from kfp_cicd.data.tables import read_table
from kfp_cicd.errors import KfpCicdError
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.network import TabularMLP
from kfp_cicd.model.packaging import save_classifier
from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame, label_vector

log = logging.getLogger(__name__)
WORKER_MODULE = "kfp_cicd.components.train.ddp_worker"


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
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    def worker_json(self) -> str:
        keys = ("epochs", "batch_size", "learning_rate", "hidden_units", "dropout",
                "weight_decay", "seed")
        return json.dumps({k: asdict(self)[k] for k in keys})


@dataclass(frozen=True)
class TrainingResult:
    """What training produced: the model directory and metrics worth showing in the KFP UI."""

    model_dir: Path
    metrics: dict[str, float]
    history: list[dict]


def processes_per_node(config: TrainingConfig) -> int:
    """One worker per visible GPU; on CPU the configured ``num_processes``."""
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return config.num_processes


def torchrun_command(data_dir: Path, output_dir: Path, config: TrainingConfig) -> list[str]:
    """``torchrun --standalone`` on this node, running the DDP worker module."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={processes_per_node(config)}", *config.extra_torchrun_args,
            "-m", WORKER_MODULE, "--data-dir", str(data_dir), "--output-dir", str(output_dir),
            "--config", config.worker_json()]


def run_workers(data_dir: Path, output_dir: Path, config: TrainingConfig) -> dict:
    """Launch the workers; stream their logs; return rank 0's ``history.json``."""
    command = torchrun_command(data_dir, output_dir, config)
    log.info("launching: %s", " ".join(command[:6]))
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise TrainingFailed(f"torchrun exited with code {completed.returncode}; "
                             "see the worker logs above")
    return json.loads((output_dir / "history.json").read_text())


def train_classifier(train_data: str, feature_spec: FeatureSpec, model_dir: str | Path,
                     config: TrainingConfig, work_dir: str | Path | None = None) -> TrainingResult:
    """Fit and save the classifier; ``work_dir`` keeps tensors and checkpoints (temp if None)."""
    frame = read_table(train_data)
    labels = label_vector(frame, feature_spec.label)
    features = feature_frame(frame, feature_spec)
    preprocessor = build_preprocessor(feature_spec).fit(features)
    matrix = np.asarray(preprocessor.transform(features), dtype=np.float32)
    log.info("training on %d rows, %d features after preprocessing, %.2f%% positive",
             len(labels), matrix.shape[1], 100 * labels.mean())

    with tempfile.TemporaryDirectory(prefix="kfp-cicd-train-") as scratch:
        work = Path(work_dir) if work_dir else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        torch.save(torch.from_numpy(matrix), work / "features.pt")
        torch.save(torch.from_numpy(labels), work / "labels.pt")
        summary = run_workers(work, work / "output", config)
        network = TabularMLP(matrix.shape[1], config.hidden_units, config.dropout)
        network.load_state_dict(torch.load(work / "output" / "state_dict.pt"))

    network.eval()
    with torch.no_grad():
        scores = torch.sigmoid(network(torch.from_numpy(matrix))).numpy()
    metrics = {
        "train_loss": float(summary["history"][-1]["loss"]),
        "train_roc_auc": float(roc_auc_score(labels, scores)),
        "train_pr_auc": float(average_precision_score(labels, scores)),
        "train_rows": float(len(labels)),
        "world_size": float(summary["world_size"]),
        "epochs": float(len(summary["history"])),
    }
    save_classifier(model_dir, preprocessor=preprocessor, network=network,
                    input_dim=matrix.shape[1], spec=feature_spec, example=features.head(5),
                    decision_threshold=config.decision_threshold,
                    metadata={"backend": summary["backend"], "device": summary["device"]})
    log.info("saved MLflow pyfunc model to %s", model_dir)
    return TrainingResult(model_dir=Path(model_dir), metrics=metrics, history=summary["history"])


def run_training_task(*, train_data: str, schema_dir: str, model_dir: str, config: TrainingConfig,
                      log_metric: callable) -> dict[str, float]:
    """The KFP task body: read the schema's feature spec, train, report metrics."""
    spec = FeatureSpec.load(schema_dir)
    result = train_classifier(train_data, spec, model_dir, config)
    for name, value in result.metrics.items():
        log_metric(name, value)
    return result.metrics
