"""GPU proof: the training entry point on CUDA (NCCL, bf16). Skips cleanly without CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kfp_cicd.components.train.training import TrainingConfig, run_workers

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_workers_train_on_every_gpu_with_nccl_and_bf16(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(65_536, 32, generator=generator)
    torch.save(features, tmp_path / "features.pt")
    torch.save((features[:, 0] > 1.0).float(), tmp_path / "labels.pt")
    config = TrainingConfig(epochs=3, batch_size=8192, hidden_units=(256, 256, 256), dropout=0.0)
    summary = run_workers(tmp_path, tmp_path / "out", config)
    assert summary["backend"] == "nccl" and summary["device"] == "cuda"
    assert summary["world_size"] == torch.cuda.device_count()
    assert summary["bf16"] == torch.cuda.is_bf16_supported()
    losses = [h["loss"] for h in summary["history"]]
    assert losses[-1] < losses[0], "bf16 training must still reduce the loss"
