"""A training worker killed mid-epoch inside a real kfp.local pipeline run, then the run repeated.

Run 1 goes through ``kfp_cicd.local_run.run_locally`` (what ``kfp-cicd run`` does) with the
TEST-ONLY kill hook set: torchrun rank 1 SIGKILLs itself in the middle of epoch 2; torchrun
restarts the worker group, the workers resume from the epoch-1 checkpoint and training completes;
the model is registered, but its deployment fails (it targets a Kubernetes cluster, and there is
none here), so no champion is set: a run that failed at its last step, as real ones do.

Run 2 repeats it with the same inputs, deploying locally, with kfp.local's task cache on
(kfp 2.17 ``local.init(enable_caching=True, cache_root=…)``; ``kfp-cicd run`` has no switch for it,
so the test turns it on around the same code path): validate and train are reused, not redone (the
champion's data contract, which validate's inputs name, is still "none"), while the reference,
evaluate, register and deploy run again, as the pipeline's per-task caching options say. On
Kubeflow/Vertex the same options drive the server-side cache, which cannot run here;
``tests/pipelines/test_caching.py`` checks them in the compiled specs.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from kfp_cicd.components.train.fault_injection import TEST_ONLY_KILL_ENV
from kfp_cicd.data.synthetic import DEMO_PARAMETERS, generate_dataset
from kfp_cicd.local_run import LocalRunRequest, run_locally
from kfp_cicd.registry.aliases import CHAMPION
from kfp_cicd.registry.client import version_for_alias

pytestmark = pytest.mark.slow
MODEL = DEMO_PARAMETERS["model_name"]
# Small and short: the fault matters here, not the model's quality.
TRAINING = {
    **DEMO_PARAMETERS,
    "epochs": 3,
    "batch_size": 256,
    "num_processes": 2,
    "min_roc_auc": -1.0,
    "min_pr_auc": -1.0,
    "max_ece": -1.0,
    "baseline_metrics": "",
    "champion_metrics": "",
    "smoke_requests": 2,
}


def test_a_killed_training_worker_resumes_and_a_cached_rerun_does_not_redo_finished_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from kfp import local

    data = generate_dataset(tmp_path / "data", rows=3000, seed=21)
    monkeypatch.setattr(
        local,
        "init",
        functools.partial(local.init, enable_caching=True, cache_root=str(tmp_path / "kfp-cache")),
    )
    marker = tmp_path / "killed-once"
    monkeypatch.setenv(TEST_ONLY_KILL_ENV, f"1:1:2:{marker}")  # rank 1, epoch 2 of 3, after step 2
    request = LocalRunRequest(
        home=tmp_path / "home",
        train_data=str(data.train),
        eval_data=str(data.holdout),
        pipeline_arguments={**TRAINING, "deploy_target": "kubernetes"},
    )

    first = run_locally(request)

    output = capfd.readouterr().out
    assert not first.succeeded and first.failed_task == "deploy-model", first.error
    assert marker.exists() and "TEST-ONLY: rank 1 sends itself SIGKILL at epoch 1 step 2" in output
    assert "resuming from" in output and "after epoch 1" in output, "the restarted workers resumed"
    assert {
        "data-contract-reference",
        "validate-data",
        "train-model",
        "evaluate-model",
        "register-model",
    } <= set(first.tasks)
    assert first.tasks["train-model"].artifacts["metrics"]["metadata"]["world_size"] == 2
    assert first.tasks["register-model"].parameters["version"] == "1"
    assert version_for_alias(first.tracking_uri, MODEL, CHAMPION) is None, "the failed deploy set no champion"

    monkeypatch.delenv(TEST_ONLY_KILL_ENV)
    # Same data and training inputs; only where deploy deploys differs.
    second = run_locally(
        LocalRunRequest(
            home=request.home,
            train_data=request.train_data,
            eval_data=request.eval_data,
            pipeline_arguments=dict(TRAINING),
        )
    )

    assert second.succeeded, second.error
    assert "validate-data" not in second.tasks, "validate ran again instead of being reused from the cache"
    assert "train-model" not in second.tasks, "train ran again instead of being reused from the cache"
    for task in ("data-contract-reference", "evaluate-model", "register-model", "deploy-model"):
        assert task in second.tasks, f"{task} reads or changes the registry: never cached"
    assert version_for_alias(second.tracking_uri, MODEL, CHAMPION) == "2"
