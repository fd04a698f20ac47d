"""GPU proof: the training entry point on CUDA (NCCL, bf16). Skips cleanly without CUDA.

Run on a GPU machine with ``benchmarks/gpu_check.sh`` (it needs only PyTorch and pandas there).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from kfp_cicd.components.train.fault_injection import TEST_ONLY_KILL_ENV
from kfp_cicd.components.train.training import TrainingConfig, run_workers

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

CONFIG = TrainingConfig(epochs=3, batch_size=8192, hidden_units=(256, 256, 256), dropout=0.0, max_restarts=1)


@pytest.fixture(scope="module")
def tensors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tensors")
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(65_536, 32, generator=generator)
    torch.save(features, directory / "features.pt")
    torch.save((features[:, 0] + 0.5 * features[:, 1] > 1.0).float(), directory / "labels.pt")
    return directory


@pytest.fixture(scope="module")
def uninterrupted(tensors: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_workers(tensors, tmp_path_factory.mktemp("uninterrupted"), CONFIG)


def test_workers_train_on_every_gpu_with_nccl_and_bf16(uninterrupted: dict) -> None:
    summary = uninterrupted
    assert summary["backend"] == "nccl" and summary["device"] == "cuda"
    assert summary["world_size"] == torch.cuda.device_count()
    assert summary["bf16"] == torch.cuda.is_bf16_supported()
    losses = [h["loss"] for h in summary["history"]]
    assert losses[-1] < losses[0], "bf16 training must still reduce the loss"
    print(f"\nGPU history: {summary['history']}")


def test_a_gpu_worker_killed_mid_epoch_resumes_from_its_checkpoint(
    tensors: Path, tmp_path: Path, uninterrupted: dict
) -> None:
    marker = tmp_path / "killed-once"
    env = {**os.environ, TEST_ONLY_KILL_ENV: f"0:1:3:{marker}"}  # rank 0, epoch 2 of 3, after step 3
    resumed = run_workers(tensors, tmp_path / "out", CONFIG, env=env)
    assert marker.exists(), "the worker must really have been killed"
    assert resumed["restart_count"] == 1
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    expected = [h["loss"] for h in uninterrupted["history"]]
    assert [h["loss"] for h in resumed["history"]] == pytest.approx(expected, rel=1e-3)


def test_early_stopping_on_gpu_takes_one_decision_for_every_rank(tmp_path: Path) -> None:
    """Validation rows labelled against the training rows: the loss rises, every rank stops together.

    NCCL all-reduces the validation loss; a rank deciding alone would leave the others waiting in
    the next epoch's collectives until the process-group timeout.
    """
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(40_000, 16, generator=generator)
    labels = (features[:, 0] + features[:, 1] > 0).float()
    torch.save(features[:32_000].clone(), tmp_path / "features.pt")
    torch.save(labels[:32_000].clone(), tmp_path / "labels.pt")
    torch.save(features[32_000:].clone(), tmp_path / "val_features.pt")
    torch.save((1 - labels[32_000:]).clone(), tmp_path / "val_labels.pt")
    config = TrainingConfig(
        epochs=30,
        batch_size=1024,
        learning_rate=0.01,
        hidden_units=(64,),
        dropout=0.0,
        early_stopping_patience=2,
    )
    summary = run_workers(tmp_path, tmp_path / "out", config)
    losses = [h["val_loss"] for h in summary["history"]]
    assert summary["stopped_early"] and len(losses) == summary["best_epoch"] + 2 < 30
    assert summary["best_epoch"] == losses.index(min(losses)) + 1
