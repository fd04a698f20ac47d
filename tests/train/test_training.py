"""Training: configuration checks, sharding, and real torchrun DDP workers on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from kfp_cicd.components.train.sampling import EpochSampler
from kfp_cicd.components.train.training import (
    TrainingConfig,
    TrainingFailed,
    run_workers,
    torchrun_command,
    train_classifier,
)
from kfp_cicd.errors import DataError


@pytest.mark.parametrize(("field", "value", "message"), [
    ("epochs", 0, "epochs must be >= 1"),
    ("batch_size", 0, "batch_size must be >= 1"),
    ("learning_rate", 0.0, "learning_rate must be in (0, 1)"),
    ("num_processes", 0, "num_processes must be >= 1"),
    ("decision_threshold", 1.5, "decision_threshold must be in (0, 1)"),
])
def test_config_rejects_bad_values_naming_them(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainingConfig(**{field: value})


@pytest.mark.parametrize(("rows", "world_size"), [(10, 2), (11, 2), (7, 3), (5, 1), (2, 3)])
def test_sampler_matches_distributed_sampler_and_covers_every_row(rows: int, world_size: int) -> None:
    from torch.utils.data import DistributedSampler

    for epoch in (0, 3):
        shards = []
        for rank in range(world_size):
            reference = DistributedSampler(range(rows), num_replicas=world_size, rank=rank, seed=3)
            reference.set_epoch(epoch)
            mine = EpochSampler(rows, rank, world_size, seed=3).indices(epoch)
            assert mine.tolist() == list(reference), "must be DistributedSampler's order"
            shards.append(mine)
        assert len({len(s) for s in shards}) == 1, "every rank must run the same number of steps"
        assert set(torch.cat(shards).tolist()) == set(range(rows))
    first, second = (EpochSampler(rows, 0, world_size, seed=3).indices(e) for e in (0, 1))
    assert rows < 4 or not torch.equal(first, second), "each epoch must reshuffle"


def test_torchrun_command_runs_the_worker_module_with_one_process_per_slot() -> None:
    command = torchrun_command(Path("/d"), Path("/o"), TrainingConfig(num_processes=3))
    assert command[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc-per-node=3" in command
    assert command[command.index("-m", 2) + 1] == "kfp_cicd.components.train.ddp_worker"
    assert json.loads(command[-1])["epochs"] == TrainingConfig().epochs


def test_ddp_training_beats_a_trivial_baseline(trained_model_dir: Path, small_dataset) -> None:
    holdout = pd.read_csv(small_dataset.holdout)
    model = mlflow.pyfunc.load_model(str(trained_model_dir))
    scores = model.predict(holdout.drop(columns=["is_fraud"]))["probability"]
    assert scores.between(0, 1).all()
    assert roc_auc_score(holdout["is_fraud"], scores) > 0.75  # a trivial model scores 0.5
    assert model.metadata.metadata["backend"] == "gloo"


def test_training_without_the_label_fails_naming_it(tmp_path: Path, small_dataset, feature_spec) -> None:
    frame = pd.read_csv(small_dataset.train).drop(columns=["is_fraud"])
    frame.to_csv(tmp_path / "unlabelled.csv", index=False)
    with pytest.raises(DataError, match="label column 'is_fraud' is missing"):
        train_classifier(str(tmp_path / "unlabelled.csv"), feature_spec, tmp_path / "model",
                         TrainingConfig(epochs=1))
    assert not (tmp_path / "model").exists()


def test_failing_workers_raise_training_failed(tmp_path: Path) -> None:
    with pytest.raises(TrainingFailed, match="torchrun exited with code"):
        run_workers(tmp_path / "no-tensors-here", tmp_path / "out", TrainingConfig(epochs=1))


def test_workers_resume_from_their_checkpoint(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    torch.save(torch.randn(256, 4, generator=generator), tmp_path / "features.pt")
    torch.save((torch.rand(256, generator=generator) > 0.8).float(), tmp_path / "labels.pt")
    first = run_workers(tmp_path, tmp_path / "out", TrainingConfig(epochs=2, batch_size=64))
    assert [h["epoch"] for h in first["history"]] == [1, 2]
    resumed = run_workers(tmp_path, tmp_path / "out", TrainingConfig(epochs=3, batch_size=64))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert resumed["history"][:2] == first["history"], "finished epochs must not be redone"
