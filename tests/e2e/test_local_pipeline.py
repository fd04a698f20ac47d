"""The whole training pipeline through real kfp.local: approved, rejected and bad-data runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kfp_cicd.data.synthetic import DEMO_PARAMETERS, generate_dataset
from kfp_cicd.local_run import LocalRunRequest, LocalRunResult, run_locally
from kfp_cicd.registry.aliases import CANDIDATE, CHAMPION
from kfp_cicd.registry.client import version_for_alias
from kfp_cicd.run_summary import format_summary

pytestmark = pytest.mark.slow
MODEL = DEMO_PARAMETERS["model_name"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory):
    return generate_dataset(tmp_path_factory.mktemp("e2e-data"), rows=20_000, seed=11)


def _run(home: Path, dataset, **parameters) -> LocalRunResult:
    return run_locally(
        LocalRunRequest(
            home=home,
            train_data=str(dataset.train),
            eval_data=str(dataset.holdout),
            pipeline_arguments={**DEMO_PARAMETERS, "epochs": 4, **parameters},
        )
    )


@pytest.fixture(scope="module")
def approved_run(tmp_path_factory: pytest.TempPathFactory, dataset) -> LocalRunResult:
    return _run(tmp_path_factory.mktemp("home"), dataset)


def test_approved_run_trains_a_model_that_beats_the_baseline(approved_run: LocalRunResult) -> None:
    assert approved_run.succeeded, approved_run.error
    metrics = approved_run.tasks["evaluate-model"].artifacts["metrics"]["metadata"]
    assert metrics["roc_auc"] > 0.8 > metrics["chance_roc_auc"]
    assert metrics["pr_auc"] > 5 * metrics["chance_pr_auc"]
    assert metrics["roc_auc"] >= metrics["baseline_roc_auc"] - 0.02, "not worse than logistic regression"
    training = approved_run.tasks["train-model"].artifacts["metrics"]["metadata"]
    assert training["world_size"] == 2, "training must run as two torchrun workers"


def test_gate_decision_matches_the_metrics(approved_run: LocalRunResult) -> None:
    evaluate = approved_run.tasks["evaluate-model"]
    metrics = evaluate.artifacts["metrics"]["metadata"]
    decision = json.loads(Path(evaluate.artifacts["decision"]["uri"]).read_text())
    assert decision["approved"] is evaluate.parameters["Output"] is True
    by_metric = {c["metric"]: c for c in decision["checks"]}
    assert by_metric["roc_auc"]["value"] == pytest.approx(metrics["roc_auc"])
    assert by_metric["roc_auc"]["threshold"] == 0.6 and "pr_auc" not in by_metric, "the pipeline defaults"


def test_registry_holds_the_version_with_candidate_and_champion(approved_run: LocalRunResult) -> None:
    version = approved_run.tasks["register-model"].parameters["version"]
    uri = approved_run.tracking_uri
    assert version_for_alias(uri, MODEL, CANDIDATE) == version
    assert version_for_alias(uri, MODEL, CHAMPION) == version, "deploy promotes after smoke checks"


def test_smoke_requests_returned_predictions(approved_run: LocalRunResult) -> None:
    deploy = approved_run.tasks["deploy-model"]
    assert "v1" in deploy.parameters["smoke_summary"].lower()
    manifest = yaml.safe_load(Path(deploy.artifacts["inference_service"]["uri"]).read_text())
    assert manifest["kind"] == "InferenceService"
    assert manifest["spec"]["predictor"]["model"]["storageUri"].startswith("file://")


def test_summary_reports_every_stage(approved_run: LocalRunResult) -> None:
    summary = format_summary(approved_run)
    for expected in (
        "SUCCEEDED",
        "training rows",
        "0 anomalies",
        "train_roc_auc",
        "roc_auc=",
        "gate:       APPROVED",
        f"models:/{MODEL}/1",
        "deployment:",
        "artifacts:",
    ):
        assert expected in summary, expected


def test_cli_run_from_another_directory_rejects_a_weak_model(tmp_path: Path, dataset) -> None:
    """The installed ``kfp-cicd run`` works from any directory; a rejected model never ships."""
    cli = Path(sys.executable).with_name("kfp-cicd")
    home = tmp_path / "home"
    completed = subprocess.run(
        [
            str(cli),
            "run",
            "--train-data",
            str(dataset.train),
            "--eval-data",
            str(dataset.holdout),
            "--home",
            str(home),
            "--param",
            "epochs=2",
            "--param",
            "min_roc_auc=0.999",
            "--param",
            f"label_column={DEMO_PARAMETERS['label_column']}",
            "--param",
            f"model_name={MODEL}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "gate:       REJECTED" in completed.stdout
    assert "roc_auc = " in completed.stdout and "(required >= 0.999): FAILED" in completed.stdout
    assert "registry:   nothing registered" in completed.stdout
    assert re.search(r"^register-model\s+skipped$", completed.stdout, re.M), (
        "the step lines say what never ran"
    )
    assert re.search(r"^deploy-model\s+skipped$", completed.stdout, re.M)
    assert "executor_input" not in completed.stdout + completed.stderr, "task output stays in the logs"
    assert version_for_alias(f"sqlite:///{home / 'mlflow.db'}", MODEL, CANDIDATE) is None


def test_bad_data_stops_at_validation_naming_the_anomaly(
    tmp_path: Path, dataset, capfd: pytest.CaptureFixture
) -> None:
    holdout = pd.read_csv(dataset.holdout)
    holdout.loc[:50, "channel"] = "carrier-pigeon"
    bad = tmp_path / "bad_holdout.csv"
    holdout.to_csv(bad, index=False)
    result = run_locally(
        LocalRunRequest(
            home=tmp_path / "home",
            train_data=str(dataset.train),
            eval_data=str(bad),
            pipeline_arguments=dict(DEMO_PARAMETERS),
        )
    )
    assert not result.succeeded
    assert result.failed_task == "validate-data"
    assert "feature 'channel'" in result.error, "the error is the component's own, not kfp's wrapper"
    assert "Inner task failed" not in result.error
    assert "feature 'channel'" in (result.log_dir / "validate-data.log").read_text()
    output = capfd.readouterr()
    assert "feature 'channel'" in output.out + output.err
    assert set(result.tasks) <= {"data-contract-reference", "validate-data"}, (
        "nothing downstream of validation may run"
    )
    assert version_for_alias(result.tracking_uri, MODEL, CANDIDATE) is None
