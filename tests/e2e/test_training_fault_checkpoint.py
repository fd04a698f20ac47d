"""A training *task* that dies for good, re-run with the same inputs and the same checkpoint_dir.

Inside one task, torchrun restarts killed workers (``test_training_fault.py``). When the whole task
dies (a lost pod; here: a worker killed with no restarts left), KFP does not cache the failed
task: the re-run trains again. It redoes no finished epoch only if ``checkpoint_dir`` is storage that
outlived the task (the train component's ``checkpoint_dir``: a /gcs/ path on Vertex, a PVC path on
Kubeflow; by default it is the task's temporary directory, gone with the task). Checkpoints carry a
run key of every setting but the epoch count, so only a re-run with the same inputs resumes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from kfp_cicd.components.train.checkpoints import CheckpointStore
from kfp_cicd.components.train.fault_injection import TEST_ONLY_KILL_ENV
from kfp_cicd.components.train.training import TrainingConfig, TrainingFailed, run_workers

pytestmark = pytest.mark.slow
CONFIG = TrainingConfig(
    epochs=4,
    batch_size=128,
    learning_rate=2e-3,
    num_processes=2,
    max_restarts=0,
    seed=7,
    hidden_units=(16,),
    dropout=0.0,
)


def test_a_rerun_with_the_same_inputs_resumes_from_the_dead_tasks_checkpoints(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(1024, 6, generator=generator)
    torch.save(features, tmp_path / "features.pt")
    torch.save((features[:, 0] > 1.0).float(), tmp_path / "labels.pt")
    checkpoints = tmp_path / "persistent-checkpoints"
    kill = {**os.environ, TEST_ONLY_KILL_ENV: f"0:2:1:{tmp_path / 'killed'}"}  # rank 0, epoch 3 of 4

    with pytest.raises(TrainingFailed, match="after up to 0 restart"):
        run_workers(tmp_path, tmp_path / "first", CONFIG, checkpoint_dir=checkpoints, env=kill)
    assert [p.name for p in CheckpointStore(checkpoints).files()] == ["epoch-0000.pt", "epoch-0001.pt"]
    capfd.readouterr()

    summary = run_workers(tmp_path, tmp_path / "again", CONFIG, checkpoint_dir=checkpoints)

    output = capfd.readouterr()
    assert f"resuming from {checkpoints} after epoch 2" in output.out + output.err, (
        "epochs 1 and 2 were not trained again"
    )
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3, 4]
    assert CheckpointStore(checkpoints).files()[-1].name == "epoch-0003.pt"

    other = TrainingConfig(**{**CONFIG.__dict__, "learning_rate": CONFIG.learning_rate * 2})
    with pytest.raises(TrainingFailed):  # other inputs: the checkpoints are refused, not resumed
        run_workers(tmp_path, tmp_path / "other", other, checkpoint_dir=checkpoints)
    output = capfd.readouterr()
    assert "belongs to a different run" in output.out + output.err
