"""Train the classifier: fit preprocessing, run DDP workers through ``torchrun``, package the model.

The parent process (the KFP task, or each node of a multi-node job) owns everything that is not the
training loop: reading data, carving validation rows out of the training rows (stratified, seeded:
:func:`auto_config.plan_validation`), fitting the scikit-learn preprocessor, choosing automatic
hyper-parameters from the data set's shape (:func:`auto_config.resolve_hyperparameters`),
tensorising once, launching ``torchrun`` with one worker per GPU (or ``num_processes`` CPU workers)
on this node, and, on the chief node, calibrating the probabilities and choosing the decision
threshold on the validation rows (:mod:`calibration`) and saving preprocessing + network +
calibration as one MLflow pyfunc model with its per-epoch history.

Validation rows: on small data sets (by default up to 20,000 training rows) k-fold cross-fitting:
k networks, each trained on k-1 folds with early stopping on the remaining one, packaged as the
average of their logits; every training row is then a validation row of exactly one network, so
calibration and threshold are fitted on all of them ("out of fold"). On large data one stratified
split of ``validation_fraction``. Measured on public data (``benchmarks/model_quality.py``
data sets): the 5-network ensemble ranked better than one network trained on one split, and the
out-of-fold calibration is fitted on 5-7x more rows than one 15 % split offers.

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
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from kfp_cicd.components.train.auto_config import (
    ValidationPlan,
    describe,
    plan_validation,
    resolve_hyperparameters,
)
from kfp_cicd.components.train.calibration import IDENTITY, Calibration, choose_threshold, fit_platt
from kfp_cicd.components.train.contract import (
    FEATURES_FILE,
    LABELS_FILE,
    MEMBERS_FILE,
    VALIDATION_FEATURES_FILE,
    VALIDATION_LABELS_FILE,
    load_entry_point,
    member_dirs,
)
from kfp_cicd.components.train.launch_env import NodeTopology, discover_node
from kfp_cicd.data.splits import stratified_folds, stratified_holdout_mask
from kfp_cicd.data.tables import read_table
from kfp_cicd.errors import KfpCicdError
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.network import LogitAverage
from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame

log = logging.getLogger(__name__)
WORKER_MODULE = "kfp_cicd.components.train.ddp_worker"
HISTORY_FILE = "training_history.json"  # written into the model directory, beside MLmodel
STANDALONE = NodeTopology(nnodes=1, node_rank=0, master_addr="127.0.0.1", master_port=0, source="standalone")


class TrainingFailed(KfpCicdError, RuntimeError):
    """The distributed workers exited with an error."""


def parse_hidden_units(value: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """``"64,32"`` (or a sequence) as a tuple of widths; ``""`` is ``()``, chosen from the data."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
        try:
            return tuple(int(part) for part in parts)
        except ValueError:
            raise ValueError(
                f"invalid training configuration: hidden_units must be comma-separated "
                f'integers such as "64,32" ("": chosen from the input width), got '
                f"{value!r}"
            ) from None
    return tuple(int(unit) for unit in value)


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters and launch settings; every field is a pipeline parameter.

    ``epochs``, ``batch_size``, ``learning_rate`` = 0 and ``hidden_units`` = ``()`` / ``""`` are
    chosen from the data set (:mod:`auto_config`); ``decision_threshold`` < 0 is chosen on the
    validation rows (max F1); ``validation_folds`` = 0 chooses between k-fold cross-fitting and one
    split of ``validation_fraction`` by the data set's size.
    """

    epochs: int = 0
    batch_size: int = 0
    learning_rate: float = 0.0
    hidden_units: tuple[int, ...] = ()
    dropout: float = 0.1
    weight_decay: float = 1e-4
    seed: int = 0
    num_processes: int = 2
    decision_threshold: float = -1.0
    early_stopping_patience: int = 5
    validation_fraction: float = 0.15
    validation_folds: int = 0
    max_restarts: int = 1
    checkpoint_dir: str = ""
    entry_point: str = ""
    entry_point_params: str = "{}"
    extra_torchrun_args: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_units", parse_hidden_units(self.hidden_units))
        problems = []
        if self.epochs < 0:
            problems.append(
                f"epochs must be >= 1, or 0 to choose from the data set's size; got {self.epochs}"
            )
        if self.batch_size < 0:
            problems.append(
                f"batch_size must be >= 1, or 0 to choose from the data set's size; got {self.batch_size}"
            )
        if not (self.learning_rate == 0 or 0 < self.learning_rate < 1):
            problems.append(
                f"learning_rate must be in (0, 1), or 0 to choose from the batch size; got "
                f"{self.learning_rate}"
            )
        if any(units < 1 for units in self.hidden_units):
            problems.append(f"hidden_units must all be >= 1, got {','.join(map(str, self.hidden_units))}")
        if self.num_processes < 1:
            problems.append(f"num_processes must be >= 1, got {self.num_processes}")
        if not (self.decision_threshold < 0 or 0 < self.decision_threshold < 1):
            problems.append(
                f"decision_threshold must be in (0, 1), or negative to choose it on the "
                f"validation rows; got {self.decision_threshold}"
            )
        if self.early_stopping_patience < 0:
            problems.append(
                f"early_stopping_patience must be >= 0 (0: never stop early), got "
                f"{self.early_stopping_patience}"
            )
        if not 0 < self.validation_fraction <= 0.5:
            problems.append(f"validation_fraction must be in (0, 0.5], got {self.validation_fraction}")
        if self.validation_folds < 0:
            problems.append(
                f"validation_folds must be >= 0 (0: chosen from the data set's size, 1: one "
                f"split, k: k-fold cross-fitting), got {self.validation_folds}"
            )
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

    @property
    def resolved(self) -> bool:
        """True when no hyper-parameter is left to choose from the data."""
        return bool(self.epochs and self.batch_size and self.learning_rate and self.hidden_units)

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
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        return cls(**values)

    def worker_params(self) -> dict[str, Any]:
        """What every rank's training module gets as ``context.params``."""
        keys = (
            "epochs",
            "batch_size",
            "learning_rate",
            "hidden_units",
            "dropout",
            "weight_decay",
            "seed",
            "early_stopping_patience",
        )
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
class Member:
    """One network's rows: row indices (into the training table) it trains on and is validated on."""

    train: np.ndarray
    validation: np.ndarray


@dataclass(frozen=True)
class PreparedData:
    """Raw features, labels, the validation plan and its members, the fitted preprocessor and matrix."""

    features: pd.DataFrame
    labels: np.ndarray
    preprocessor: ColumnTransformer
    matrix: np.ndarray
    spec: FeatureSpec
    plan: ValidationPlan
    members: tuple[Member, ...]

    @property
    def validation_rows(self) -> np.ndarray:
        """Every member's validation rows, in member order (each row at most once)."""
        return np.concatenate([member.validation for member in self.members])


def processes_per_node(config: TrainingConfig) -> int:
    """One worker per visible GPU; on CPU the configured ``num_processes``."""
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return config.num_processes


def world_size(config: TrainingConfig, topology: NodeTopology = STANDALONE) -> int:
    return processes_per_node(config) * topology.nnodes


def torchrun_command(
    data_dir: Path,
    output_dir: Path,
    config: TrainingConfig,
    topology: NodeTopology = STANDALONE,
    checkpoint_dir: Path | None = None,
) -> list[str]:
    """``torchrun`` for this node (``--standalone`` on one node), running the DDP worker module."""
    if topology.standalone:
        placement = ["--standalone"]
    else:
        placement = [
            f"--nnodes={topology.nnodes}",
            f"--node-rank={topology.node_rank}",
            f"--master-addr={topology.master_addr}",
            f"--master-port={topology.master_port}",
        ]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *placement,
        f"--nproc-per-node={processes_per_node(config)}",
        f"--max-restarts={config.max_restarts}",
        *config.extra_torchrun_args,
        "-m",
        WORKER_MODULE,
        "--data-dir",
        str(data_dir),
        "--output-dir",
        str(output_dir),
        "--checkpoint-dir",
        str(checkpoint_dir or output_dir / "checkpoints"),
        "--entry-point",
        config.entry_point,
        "--config",
        config.worker_json(),
    ]


def resolve_for_tensors(
    data_dir: Path, config: TrainingConfig, topology: NodeTopology = STANDALONE
) -> TrainingConfig:
    """``config`` with automatic values chosen from the (first member's) tensors in ``data_dir``."""
    if config.resolved:
        return config
    member = member_dirs(data_dir)[0][1]
    features = torch.load(member / FEATURES_FILE, mmap=True, weights_only=True)
    labels = torch.load(member / LABELS_FILE, mmap=True, weights_only=True)
    return resolve_hyperparameters(
        len(labels), int(features.shape[1]), int(labels.sum()), config, world_size(config, topology)
    )


def run_workers(
    data_dir: Path,
    output_dir: Path,
    config: TrainingConfig,
    topology: NodeTopology = STANDALONE,
    checkpoint_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """Launch this node's workers; stream their logs; return rank 0's ``history.json`` (chief only).

    Automatic hyper-parameters (0 / empty) are chosen from the tensors in ``data_dir`` first.
    """
    if (data_dir / FEATURES_FILE).is_file() or (data_dir / MEMBERS_FILE).is_file():
        config = resolve_for_tensors(data_dir, config, topology)
    command = torchrun_command(data_dir, output_dir, config, topology, checkpoint_dir)
    log.info("launching: %s", " ".join(command[: command.index("-m", 2) + 2]))
    completed = subprocess.run(command, check=False, env=env)
    if completed.returncode != 0:
        raise TrainingFailed(
            f"torchrun exited with code {completed.returncode} (after up to "
            f"{config.max_restarts} restart(s)); see the worker logs above"
        )
    if not topology.is_chief:
        return {}
    return json.loads((output_dir / "history.json").read_text())


def plan_members(labels: np.ndarray, config: TrainingConfig) -> tuple[ValidationPlan, tuple[Member, ...]]:
    """The validation plan for these labels and each member's training / validation row indices."""
    positives = int(labels.sum())
    plan = plan_validation(len(labels), min(positives, len(labels) - positives), config)
    everything = np.arange(len(labels))
    if plan.folds == 0:
        return plan, (Member(everything, everything[:0]),)
    if plan.folds == 1:
        held_out = stratified_holdout_mask(labels, plan.fraction, config.seed)
        return plan, (Member(everything[~held_out], everything[held_out]),)
    folds = stratified_folds(labels, plan.folds, config.seed)
    return plan, tuple(Member(everything[folds != k], everything[folds == k]) for k in range(plan.folds))


def prepare_data(
    train_data: str, feature_spec: FeatureSpec, config: TrainingConfig | None = None
) -> PreparedData:
    """Read the table, carve the validation rows, fit the preprocessor, transform to a float32 matrix.

    With one validation split the preprocessor is fitted on the training part only. Cross-fitted
    members share one preprocessor (the packaged model has one), fitted on all rows: it learns
    medians, means, scales and category lists, never the labels, so the held-out folds' losses stay
    honest.
    """
    config = config or TrainingConfig()
    frame = read_table(train_data)
    labels = feature_spec.labels.encode_frame(frame)
    features = feature_frame(frame, feature_spec)
    plan, members = plan_members(labels, config)
    fit_rows = members[0].train if plan.folds == 1 else np.arange(len(labels))
    preprocessor = build_preprocessor(feature_spec).fit(features.iloc[fit_rows])
    matrix = np.asarray(preprocessor.transform(features), dtype=np.float32)
    log.info(
        "training on %d rows, %d features after preprocessing, %.2f%% positive; validation: %s",
        len(labels),
        matrix.shape[1],
        100 * labels.mean(),
        plan.rule,
    )
    return PreparedData(
        features=features,
        labels=labels,
        preprocessor=preprocessor,
        matrix=matrix,
        spec=feature_spec,
        plan=plan,
        members=members,
    )


def member_names(count: int) -> list[str]:
    """The data/output subdirectory of each member: none for a single network (the directory itself)."""
    return [""] if count == 1 else [f"member-{k}" for k in range(count)]


def write_tensors(prepared: PreparedData, work: Path) -> None:
    """Each member's training and validation tensors: in ``work`` itself, or one subdirectory each."""
    names = member_names(len(prepared.members))
    for name, member in zip(names, prepared.members, strict=True):
        directory = work / name
        directory.mkdir(parents=True, exist_ok=True)
        pairs = [(member.train, FEATURES_FILE, LABELS_FILE)]
        if len(member.validation):
            pairs.append((member.validation, VALIDATION_FEATURES_FILE, VALIDATION_LABELS_FILE))
        for rows, features_file, labels_file in pairs:
            torch.save(torch.from_numpy(prepared.matrix[rows]), directory / features_file)
            torch.save(torch.from_numpy(prepared.labels[rows].astype(np.float32)), directory / labels_file)
    if len(names) > 1:
        (work / MEMBERS_FILE).write_text(json.dumps(names))


def logits_of(network: torch.nn.Module, matrix: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """The network's logits (float64) for the rows of ``matrix``, in eval mode, chunk by chunk."""
    network.eval()
    with torch.no_grad():
        parts = [
            network(torch.from_numpy(matrix[begin : begin + chunk])).double().numpy()
            for begin in range(0, len(matrix), chunk)
        ]
    return np.concatenate(parts) if parts else np.zeros(0)


def out_of_fold_logits(prepared: PreparedData, members: list[torch.nn.Module]) -> np.ndarray:
    """Each member's logits on its own validation rows, in :attr:`PreparedData.validation_rows` order."""
    return np.concatenate(
        [
            logits_of(network, prepared.matrix[member.validation])
            for network, member in zip(members, prepared.members, strict=True)
        ]
    )


def load_members(prepared: PreparedData, output_dir: Path, config: TrainingConfig) -> list[torch.nn.Module]:
    """Every member's network (rebuilt by the training module) with the weights rank 0 saved."""
    entry = load_entry_point(config.entry_point)
    networks = []
    for name in member_names(len(prepared.members)):
        network = entry.build_network(prepared.matrix.shape[1], config.worker_params())
        network.load_state_dict(torch.load(output_dir / name / "state_dict.pt", weights_only=True))
        networks.append(network.eval())
    return networks


def validation_facts(
    prepared: PreparedData, oof_logits: np.ndarray, calibration: Calibration, summary: dict
) -> dict[str, float]:
    """Validation rows, their calibrated log loss and ROC AUC, best epoch(s) and early stops."""
    members = summary.get("members") or [summary]
    best_epochs = [float(m.get("best_epoch") or len(m.get("history", []))) for m in members]
    facts = {
        "validation_rows": float(len(oof_logits)),
        "validation_folds": float(prepared.plan.folds),
        "best_epoch": float(np.mean(best_epochs)),
        "stopped_early": float(np.mean([bool(m.get("stopped_early")) for m in members])),
    }
    labels = prepared.labels[prepared.validation_rows]
    if len(labels) and 0 < labels.sum() < len(labels):
        probabilities = calibration.probabilities(oof_logits)
        facts["validation_log_loss"] = float(log_loss(labels, probabilities, labels=[0, 1]))
        facts["validation_roc_auc"] = float(roc_auc_score(labels, probabilities))
    return facts


def training_metrics(
    prepared: PreparedData, network: torch.nn.Module, calibration: Calibration, summary: dict
) -> dict[str, float]:
    """Training-set metrics (calibrated probabilities of the packaged network) and run facts."""
    scores = calibration.probabilities(logits_of(network, prepared.matrix))
    history = summary["history"]
    members = summary.get("members") or [summary]
    speeds = [h["rows_per_second"] for h in history if h.get("rows_per_second")]
    final_losses = [m["history"][-1]["loss"] for m in members if m.get("history")]
    return {
        "train_loss": float(np.mean(final_losses)) if final_losses else float("nan"),
        "train_roc_auc": float(roc_auc_score(prepared.labels, scores)),
        "train_pr_auc": float(average_precision_score(prepared.labels, scores)),
        "train_rows": float(len(prepared.labels)),
        "world_size": float(summary["world_size"]),
        "epochs": float(max((len(m.get("history", [])) for m in members), default=0)),
        "train_rows_per_second": float(np.median(speeds)) if speeds else 0.0,
    }


def hyperparameter_metrics(config: TrainingConfig) -> dict[str, float]:
    """The resolved hyper-parameters as numbers (KFP metrics are numbers only)."""
    return {
        "max_epochs": float(config.epochs),
        "batch_size": float(config.batch_size),
        "learning_rate": float(config.learning_rate),
        "hidden_layers": float(len(config.hidden_units)),
        "hidden_width": float(config.hidden_units[0]) if config.hidden_units else 0.0,
    }


def package_model(
    prepared: PreparedData, output_dir: Path, model_dir: str | Path, config: TrainingConfig, summary: dict
) -> TrainingResult:
    """Load the members' weights, calibrate and choose the threshold out of fold, save the model.

    ``config`` must be resolved (:func:`resolve_hyperparameters`): its values rebuild the networks
    and are recorded in the metrics and the model's metadata.
    """
    # Imported here: launching workers (every node of a multi-node job) needs no MLflow, only the
    # chief packaging the model does.
    from kfp_cicd.model.packaging import save_classifier, training_numeric_ranges

    entry = load_entry_point(config.entry_point)
    members = load_members(prepared, output_dir, config)
    network = members[0] if len(members) == 1 else LogitAverage(members).eval()
    oof_logits = out_of_fold_logits(prepared, members)
    oof_labels = prepared.labels[prepared.validation_rows]
    calibration = fit_platt(oof_logits, oof_labels) if len(oof_labels) else IDENTITY
    where = (
        f"{len(oof_labels):,} out-of-fold validation rows ({prepared.plan.folds}-fold cross-fitting)"
        if prepared.plan.cross_fitted
        else f"the validation split ({len(oof_labels):,} rows)"
    )
    threshold, rule = choose_threshold(
        config.decision_threshold, calibration.probabilities(oof_logits), oof_labels, where
    )
    settings = describe(config)
    metrics = {
        **training_metrics(prepared, network, calibration, summary),
        **validation_facts(prepared, oof_logits, calibration, summary),
        **hyperparameter_metrics(config),
        "decision_threshold": threshold,
    }
    save_classifier(
        model_dir,
        preprocessor=prepared.preprocessor,
        network=network,
        input_dim=prepared.matrix.shape[1],
        spec=prepared.spec,
        example=prepared.features.head(5),
        decision_threshold=threshold,
        threshold_rule=rule,
        calibration=calibration.to_config(),
        numeric_ranges=training_numeric_ranges(prepared.features, prepared.spec),
        metadata={
            "backend": summary["backend"],
            "device": summary["device"],
            "world_size": summary["world_size"],
            "entry_point": entry.module,
            "hyperparameters": settings,
            "validation": prepared.plan.rule,
            "members": len(members),
            "best_epochs": [m.get("best_epoch") for m in summary.get("members", [])],
            "threshold_rule": rule,
        },
    )
    history = summary["history"]
    (Path(model_dir) / HISTORY_FILE).write_text(json.dumps(history, indent=2))
    log.info("calibration %s; decision threshold %.4f (%s)", calibration.to_config(), threshold, rule)
    log.info("saved MLflow pyfunc model to %s", model_dir)
    return TrainingResult(model_dir=Path(model_dir), metrics=metrics, history=history)


def train_classifier(
    train_data: str,
    feature_spec: FeatureSpec,
    model_dir: str | Path,
    config: TrainingConfig,
    work_dir: str | Path | None = None,
    topology: NodeTopology = STANDALONE,
) -> TrainingResult | None:
    """Fit and save the classifier; ``work_dir`` keeps tensors (temp if None).

    Checkpoints go to ``config.checkpoint_dir`` (default: inside the work directory). Returns None
    on a non-chief node of a multi-node job (node 0 packages the model).
    """
    load_entry_point(config.entry_point)  # fail before reading data when the module is wrong
    prepared = prepare_data(train_data, feature_spec, config)
    first = prepared.members[0].train
    config = resolve_hyperparameters(
        len(first),
        prepared.matrix.shape[1],
        int(prepared.labels[first].sum()),
        config,
        world_size(config, topology),
    )
    log.info("hyper-parameters: %s", describe(config))
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-train-") as scratch:
        work = Path(work_dir) if work_dir else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        write_tensors(prepared, work)
        checkpoints = Path(config.checkpoint_dir) if config.checkpoint_dir else work / "checkpoints"
        summary = run_workers(work, work / "output", config, topology, checkpoints)
        if not topology.is_chief:
            log.info("node %d of %d done; node 0 packages the model", topology.node_rank, topology.nnodes)
            return None
        return package_model(prepared, work / "output", model_dir, config, summary)


def run_training_task(
    *,
    train_data: str,
    schema_dir: str,
    model_dir: str,
    config: TrainingConfig,
    log_metric: Callable[[str, float], None],
    metrics_path: str | None = None,
) -> dict[str, float] | None:
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
