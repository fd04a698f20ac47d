"""Checkpoints that survive a lost worker, and reproducible training (real torchrun workers on CPU)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from kfp_cicd.components.train.checkpoints import CheckpointMismatch, CheckpointStore
from kfp_cicd.components.train.fault_injection import TEST_ONLY_KILL_ENV
from kfp_cicd.components.train.training import TrainingConfig, TrainingFailed, run_workers

CONFIG = TrainingConfig(
    epochs=4, batch_size=128, num_processes=2, max_restarts=1, seed=5, hidden_units=(32, 16), dropout=0.2
)


@pytest.fixture(scope="module")
def tensors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tensors")
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2048, 8, generator=generator)
    labels = (features[:, 0] + 0.5 * features[:, 1] + 0.3 * torch.randn(2048, generator=generator)) > 1.2
    torch.save(features, directory / "features.pt")
    torch.save(labels.float(), directory / "labels.pt")
    return directory


@pytest.fixture(scope="module")
def uninterrupted(tensors: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("uninterrupted")
    summary = run_workers(tensors, out, CONFIG)
    return summary, torch.load(out / "state_dict.pt")


def losses(summary: dict) -> list[float]:
    return [entry["loss"] for entry in summary["history"]]


def test_same_data_params_and_world_size_give_the_same_model(
    tensors: Path, tmp_path: Path, uninterrupted: tuple[dict, dict]
) -> None:
    summary, weights = uninterrupted
    again = run_workers(tensors, tmp_path / "again", CONFIG)
    assert losses(again) == losses(summary)
    again_weights = torch.load(tmp_path / "again" / "state_dict.pt")
    assert all(torch.equal(again_weights[k], weights[k]) for k in weights)


def test_a_worker_killed_mid_epoch_is_restarted_and_resumes_from_the_checkpoint(
    tensors: Path, tmp_path: Path, uninterrupted: tuple[dict, dict]
) -> None:
    summary, weights = uninterrupted
    marker = tmp_path / "killed-once"
    env = {**os.environ, TEST_ONLY_KILL_ENV: f"1:2:3:{marker}"}  # rank 1, epoch 3 of 4, after step 3
    resumed = run_workers(tensors, tmp_path / "out", CONFIG, env=env)
    assert marker.exists(), "the worker must really have been killed"
    assert resumed["restart_count"] == 1, "torchrun must have restarted the worker group once"
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3, 4]
    assert losses(resumed) == pytest.approx(losses(summary), rel=1e-5, abs=1e-6)
    resumed_weights = torch.load(tmp_path / "out" / "state_dict.pt")
    for name, value in weights.items():
        torch.testing.assert_close(resumed_weights[name], value, rtol=1e-5, atol=1e-6)


def test_without_restarts_a_killed_worker_fails_the_run(tensors: Path, tmp_path: Path) -> None:
    env = {**os.environ, TEST_ONLY_KILL_ENV: f"0:1:0:{tmp_path / 'marker'}"}
    config = TrainingConfig(**{**CONFIG.__dict__, "max_restarts": 0, "epochs": 2})
    with pytest.raises(TrainingFailed, match="after up to 0 restart"):
        run_workers(tensors, tmp_path / "out", config, env=env)
    assert [p.name for p in CheckpointStore(tmp_path / "out" / "checkpoints").files()] == ["epoch-0000.pt"]


def test_checkpoints_of_another_run_are_refused(tmp_path: Path) -> None:
    CheckpointStore(tmp_path, run_key="run-a").save(0, {"model": {}})
    with pytest.raises(CheckpointMismatch, match="different run"):
        CheckpointStore(tmp_path, run_key="run-b").load_latest()


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, run_key="k", keep=3)
    store.save(0, {"value": torch.tensor(1.0)})
    store.save(1, {"value": torch.tensor(2.0)})
    (tmp_path / "epoch-0001.pt").write_bytes(b"truncated")
    assert store.load_latest()["epoch"] == 0
    for epoch in range(2, 6):
        store.save(epoch, {})
    assert [p.name for p in store.files()] == ["epoch-0003.pt", "epoch-0004.pt", "epoch-0005.pt"]
