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


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epochs", -1, "epochs must be >= 1, or 0 to choose"),
        ("batch_size", -8, "batch_size must be >= 1, or 0 to choose"),
        ("learning_rate", 1.5, "learning_rate must be in (0, 1), or 0 to choose"),
        ("learning_rate", -0.1, "learning_rate must be in (0, 1), or 0 to choose"),
        ("hidden_units", "64,0", "hidden_units must all be >= 1"),
        ("hidden_units", "wide", "hidden_units must be comma-separated integers"),
        ("num_processes", 0, "num_processes must be >= 1"),
        ("decision_threshold", 0.0, "decision_threshold must be in (0, 1), or negative"),
        ("decision_threshold", 1.0, "decision_threshold must be in (0, 1), or negative"),
        ("decision_threshold", 1.5, "decision_threshold must be in (0, 1), or negative"),
        ("early_stopping_patience", -1, "early_stopping_patience must be >= 0"),
        ("validation_fraction", 0.0, "validation_fraction must be in (0, 0.5]"),
        ("validation_fraction", 0.6, "validation_fraction must be in (0, 0.5]"),
        ("validation_folds", -1, "validation_folds must be >= 0"),
    ],
)
def test_config_rejects_bad_values_naming_them(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainingConfig(**{field: value})


def test_config_defaults_are_automatic_and_explicit_values_parse() -> None:
    default = TrainingConfig()
    automatic = (default.epochs, default.batch_size, default.learning_rate, default.hidden_units)
    assert automatic == (0, 0, 0.0, ())
    assert default.decision_threshold < 0 and not default.resolved
    given = TrainingConfig(
        hidden_units=" 64, 32 ", decision_threshold=0.3, epochs=3, batch_size=8, learning_rate=0.01
    )
    assert given.hidden_units == (64, 32) and given.resolved
    assert TrainingConfig.from_json(given.to_json()) == given
    assert given.worker_params()["early_stopping_patience"] == 5


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
        train_classifier(
            str(tmp_path / "unlabelled.csv"), feature_spec, tmp_path / "model", TrainingConfig(epochs=1)
        )
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


def test_trained_model_is_calibrated_and_its_threshold_chosen_out_of_fold(
    trained_model_dir: Path, small_dataset
) -> None:
    from kfp_cicd.components.evaluate.metrics import expected_calibration_error

    config = json.loads((trained_model_dir / "artifacts" / "config.json").read_text())
    assert config["calibration"]["method"] == "platt" and config["calibration"]["slope"] > 0
    assert config["threshold_rule"].startswith("max F1 (")
    assert "out-of-fold validation rows (5-fold cross-fitting)" in config["threshold_rule"]
    assert 0 < config["decision_threshold"] < 1
    model = mlflow.pyfunc.load_model(str(trained_model_dir))
    metadata = model.metadata.metadata
    assert metadata["members"] == 5 and metadata["hyperparameters"]["max_epochs"] == 4
    holdout = pd.read_csv(small_dataset.holdout)
    scores = model.predict(holdout.drop(columns=["is_fraud"]))["probability"].to_numpy()
    assert expected_calibration_error(holdout["is_fraud"].to_numpy(), scores) <= 0.05


def test_one_validation_split_is_saved_beside_the_tensors_and_preprocessing_never_sees_it(
    tmp_path: Path, small_dataset, feature_spec
) -> None:
    from kfp_cicd.components.train.contract import TrainingContext

    config = TrainingConfig(epochs=3, validation_folds=1, validation_fraction=0.3, seed=4, hidden_units="16")
    result = train_classifier(
        str(small_dataset.train), feature_spec, tmp_path / "model", config, work_dir=tmp_path / "work"
    )
    work = tmp_path / "work"
    features, labels = torch.load(work / "features.pt"), torch.load(work / "labels.pt")
    val_features, val_labels = torch.load(work / "val_features.pt"), torch.load(work / "val_labels.pt")
    train_rows = len(pd.read_csv(small_dataset.train))
    assert len(labels) + len(val_labels) == train_rows
    assert len(val_labels) == pytest.approx(0.3 * train_rows, abs=2)
    assert float(val_labels.mean()) == pytest.approx(float(labels.mean()), abs=0.002), "stratified"
    numeric = len(feature_spec.numeric)
    assert features[:, :numeric].mean(dim=0).abs().max() < 1e-4, "the scaler was fitted on these rows"
    assert val_features[:, :numeric].mean(dim=0).abs().max() > 1e-3, "... and not on the held-out ones"
    context = TrainingContext(
        rank=0,
        world_size=1,
        local_rank=0,
        device=torch.device("cpu"),
        backend="gloo",
        bf16=False,
        launcher="test",
        data_dir=work,
        params={},
        checkpoints=None,
        progress=None,
    )
    loaded_features, loaded_labels = context.load_validation_tensors()
    assert torch.equal(loaded_features, val_features) and torch.equal(loaded_labels, val_labels)
    assert result.metrics["validation_rows"] == len(val_labels) and result.metrics["validation_folds"] == 1
    assert result.metrics["hidden_width"] == 16 and result.metrics["max_epochs"] == 3
    assert 1 <= result.metrics["best_epoch"] <= 3 and "validation_log_loss" in result.metrics
    assert all("val_loss" in entry for entry in result.history)
    config_json = json.loads((tmp_path / "model" / "artifacts" / "config.json").read_text())
    assert config_json["threshold_rule"].endswith(f"on the validation split ({len(val_labels):,} rows)")


def test_a_tiny_data_set_still_trains(tmp_path: Path, small_dataset, feature_spec) -> None:
    """Three positives: three folds of one positive each. One positive: no validation rows at all."""
    frame = pd.read_csv(small_dataset.train)
    negatives = frame[frame["is_fraud"] == 0].head(40)
    for positives, expected_rule in ((3, "max F1"), (1, "0.5: no validation rows")):
        tiny = pd.concat([negatives, frame[frame["is_fraud"] == 1].head(positives)])
        path = tmp_path / f"tiny-{positives}.csv"
        tiny.to_csv(path, index=False)
        result = train_classifier(
            str(path),
            feature_spec,
            tmp_path / f"model-{positives}",
            TrainingConfig(epochs=2, num_processes=1),
        )
        config = json.loads((tmp_path / f"model-{positives}" / "artifacts" / "config.json").read_text())
        assert config["threshold_rule"].startswith(expected_rule)
        assert result.metrics["validation_folds"] == (3 if positives == 3 else 0)
    assert config["calibration"]["method"] == "none", "nothing to calibrate on: the plain sigmoid"
