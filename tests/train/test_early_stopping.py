"""Early stopping on the validation loss: unit rules, and real torchrun workers (gloo, 2 ranks).

The workers' validation rows here have their labels *flipped* against the training rows', so the
better the network fits its training rows the worse its validation loss gets: the loss rises after
the first epochs, and early stopping has to notice, stop and hand back the best epoch's weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from kfp_cicd.components.train.fault_injection import TEST_ONLY_KILL_ENV
from kfp_cicd.components.train.tabular_loop import EarlyStopping
from kfp_cicd.components.train.training import TrainingConfig, run_workers
from kfp_cicd.model.network import TabularMLP

CONFIG = TrainingConfig(
    epochs=30,
    batch_size=64,
    learning_rate=0.01,
    hidden_units=(16,),
    dropout=0.0,
    num_processes=2,
    early_stopping_patience=3,
    seed=2,
)


def write_member(directory: Path, seed: int, flip_validation: bool) -> None:
    """Training rows whose label is ``x0 + x1 > 0``; validation rows labelled the same or flipped."""
    directory.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(1_200, 6, generator=generator)
    labels = (features[:, 0] + features[:, 1] > 0).float()
    train, validation = slice(0, 1_000), slice(1_000, None)
    validation_labels = 1 - labels[validation] if flip_validation else labels[validation]
    torch.save(features[train].clone(), directory / "features.pt")
    torch.save(labels[train].clone(), directory / "labels.pt")
    torch.save(features[validation].clone(), directory / "val_features.pt")
    torch.save(validation_labels.clone(), directory / "val_labels.pt")


def validation_loss_of(weights: dict[str, torch.Tensor], directory: Path) -> float:
    network = TabularMLP(6, CONFIG.hidden_units, 0.0)
    network.load_state_dict(weights)
    network.eval()
    with torch.no_grad():
        logits = network(torch.load(directory / "val_features.pt"))
    return float(
        torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.load(directory / "val_labels.pt"))
    )


def test_the_rule_keeps_the_best_weights_and_stops_after_patience_epochs_without_progress() -> None:
    network = torch.nn.Linear(2, 1)
    stopping = EarlyStopping(patience=3)
    weights_at = {}
    for epoch, loss in enumerate([1.0, 0.8, 0.9, 0.80001, 0.95], start=1):
        torch.nn.init.constant_(network.weight, float(epoch))
        weights_at[epoch] = network.weight.detach().clone()
        stopping.update(epoch, loss, network)
        assert stopping.stopped == (epoch == 5), "3 epochs without a better loss (0.80001 is no better)"
    assert (stopping.best_epoch, stopping.best_loss, stopping.bad_epochs) == (2, 0.8, 3)
    assert torch.equal(stopping.best_state["weight"], weights_at[2])
    restored = EarlyStopping(patience=3)
    restored.restore(stopping.state())
    assert restored.state()["best_epoch"] == 2 and restored.stopped
    never = EarlyStopping(patience=0)
    for epoch in range(1, 20):
        never.update(epoch, float(epoch), network)
    assert not never.stopped and never.best_epoch == 1


def test_workers_stop_when_the_validation_loss_rises_and_keep_the_best_epoch(tmp_path: Path) -> None:
    write_member(tmp_path / "data", seed=0, flip_validation=True)
    summary = run_workers(tmp_path / "data", tmp_path / "out", CONFIG)
    losses = [entry["val_loss"] for entry in summary["history"]]
    best = losses.index(min(losses)) + 1
    assert summary["stopped_early"] is True and summary["best_epoch"] == best
    assert len(losses) == best + CONFIG.early_stopping_patience < CONFIG.epochs
    assert losses[-1] > losses[best - 1], "the validation loss rose after the best epoch"
    saved = torch.load(tmp_path / "out" / "state_dict.pt")
    assert validation_loss_of(saved, tmp_path / "data") == pytest.approx(min(losses), rel=1e-5), (
        "the saved weights must be the best epoch's, not the last one's"
    )


def test_patience_zero_runs_every_epoch_and_still_keeps_the_best_one(tmp_path: Path) -> None:
    write_member(tmp_path / "data", seed=0, flip_validation=True)
    config = TrainingConfig(**{**CONFIG.__dict__, "early_stopping_patience": 0, "epochs": 6})
    summary = run_workers(tmp_path / "data", tmp_path / "out", config)
    losses = [entry["val_loss"] for entry in summary["history"]]
    assert len(losses) == 6 and summary["stopped_early"] is False
    saved = torch.load(tmp_path / "out" / "state_dict.pt")
    assert validation_loss_of(saved, tmp_path / "data") == pytest.approx(min(losses), rel=1e-5)


def test_a_worker_killed_after_the_best_epoch_resumes_with_its_patience_counter(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two cross-fitted members; a worker dies in the second one after the first has stopped early.

    The restarted group must not retrain the finished member and must continue the second with the
    best-so-far state and patience counter from its checkpoint: histories and weights are exactly
    those of the uninterrupted run.
    """
    data = tmp_path / "data"
    write_member(data / "member-0", seed=0, flip_validation=True)  # stops after a few epochs
    write_member(data / "member-1", seed=1, flip_validation=False)  # improves for longer
    (data / "members.json").write_text(json.dumps(["member-0", "member-1"]))
    config = TrainingConfig(**{**CONFIG.__dict__, "epochs": 12})
    uninterrupted = run_workers(data, tmp_path / "uninterrupted", config)
    first, second = uninterrupted["members"]
    assert first["stopped_early"] and len(first["history"]) < 8 <= len(second["history"])
    marker = tmp_path / "killed-once"
    env = {**os.environ, TEST_ONLY_KILL_ENV: f"1:7:2:{marker}"}  # rank 1, epoch 8: only member-1 gets there
    capfd.readouterr()
    resumed = run_workers(data, tmp_path / "resumed", config, env=env)
    assert marker.exists() and resumed["restart_count"] == 1
    output = capfd.readouterr()
    finished = tmp_path / "resumed" / "checkpoints" / "member-0"
    assert f"resuming from {finished} after epoch {len(first['history'])}" in output.out + output.err, (
        "the member that had stopped early is resumed from its last checkpoint, not retrained"
    )
    for resumed_member, expected_member in zip(resumed["members"], uninterrupted["members"], strict=True):
        for key in ("epoch", "loss", "val_loss"):
            assert [h[key] for h in resumed_member["history"]] == pytest.approx(
                [h[key] for h in expected_member["history"]], rel=1e-5, abs=1e-6
            )
    for key in ("best_epoch", "stopped_early"):
        assert [m[key] for m in resumed["members"]] == [m[key] for m in uninterrupted["members"]]
    assert {h["member"] for h in resumed["history"]} == {0, 1}
    for name in ("member-0", "member-1"):
        expected = torch.load(tmp_path / "uninterrupted" / name / "state_dict.pt")
        actual = torch.load(tmp_path / "resumed" / name / "state_dict.pt")
        for key, value in expected.items():
            torch.testing.assert_close(actual[key], value, rtol=1e-5, atol=1e-6)
