"""Champion vs challenger, registration with the audit record, and rollback, on a real mlflow server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from kfp_cicd.cli import main
from kfp_cicd.components.evaluate.audit_record import AuditContext
from kfp_cicd.components.evaluate.evaluation import (
    EvaluationSettings,
    MetricSinks,
    OutputPaths,
    TaskResult,
    run_evaluation_task,
)
from kfp_cicd.components.evaluate.gate import GatePolicy
from kfp_cicd.components.evaluate.operating_point import ErrorCosts
from kfp_cicd.components.register.task import run_register_task
from kfp_cicd.errors import DataError, RegistryError
from kfp_cicd.registry.aliases import CANDIDATE, CHAMPION, PREVIOUS, promote, rollback
from kfp_cicd.registry.client import list_versions, version_for_alias
from kfp_cicd.registry.registration import register_model_version


def _evaluate(
    model_dir: Path, holdout: Path, uri: str, name: str, out: Path
) -> tuple[TaskResult, OutputPaths]:
    """Absolute gates off: only the champion comparison (ROC AUC, PR AUC, margin 0.01) decides."""
    settings = EvaluationSettings(
        policy=GatePolicy(champion_metrics=("roc_auc", "pr_auc"), champion_margin=0.01),
        costs=ErrorCosts(30.0, 1.0),
        tracking_uri=uri,
        model_name=name,
        latency_repeats=1,
    )
    outputs = OutputPaths(
        decision=str(out / "decision.json"),
        operating_model=str(out / "model"),
        report=str(out / "report.html"),
        model_card=str(out / "card.md"),
        audit_record=str(out / "audit.json"),
    )
    result = run_evaluation_task(
        model_dir=str(model_dir),
        eval_data=str(holdout),
        settings=settings,
        context=AuditContext(model_name=name, data_fingerprint="sha256:d"),
        sinks=MetricSinks(lambda *_: None, lambda *_: None, lambda *_: None),
        outputs=outputs,
    )
    return result, outputs


def _register(outputs: OutputPaths, uri: str, name: str) -> str:
    version, _, _ = run_register_task(
        model_dir=outputs.operating_model,
        metrics={},
        decision_path=outputs.decision,
        tracking_uri=uri,
        model_name=name,
        data_fingerprint="sha256:d",
        train_data="train.csv",
        pipeline_job_name="job",
        pipeline_job_id="1",
        audit_record_path=outputs.audit_record,
        model_card_path=outputs.model_card,
        report_path=outputs.report,
    )
    return version


def _champion_checks(result: TaskResult) -> dict[str, bool]:
    return {c["metric"]: c["passed"] for c in result.record["decision"]["checks"] if c["kind"] == "champion"}


def test_first_release_is_judged_without_a_champion_and_says_so(
    trained_model_dir: Path, small_dataset, mlflow_server: str, tmp_path: Path
) -> None:
    result, _ = _evaluate(trained_model_dir, small_dataset.holdout, mlflow_server, "first-release", tmp_path)
    assert result.approved
    assert _champion_checks(result) == {}
    assert any("first release" in n for n in result.record["decision"]["notes"])
    assert result.record["champion"]["compared"] is False


def test_weaker_challenger_is_rejected_and_the_champion_stays(
    trained_model_dir: Path, untrained_model_dir: Path, small_dataset, mlflow_server: str, tmp_path: Path
) -> None:
    champion = register_model_version(trained_model_dir, tracking_uri=mlflow_server, model_name="cc-weak")
    promote(mlflow_server, "cc-weak", champion.version)
    result, outputs = _evaluate(
        untrained_model_dir, small_dataset.holdout, mlflow_server, "cc-weak", tmp_path
    )
    assert not result.approved
    assert _champion_checks(result) == {"roc_auc vs champion": False, "pr_auc vs champion": False}
    assert result.record["champion"]["version"] == champion.version
    with pytest.raises(RegistryError, match="did not approve"):
        _register(outputs, mlflow_server, "cc-weak")
    assert version_for_alias(mlflow_server, "cc-weak", CHAMPION) == champion.version
    assert [v.version for v in list_versions(mlflow_server, "cc-weak")] == [champion.version]


def test_stronger_challenger_is_approved_registered_promoted_and_rolled_back(
    trained_model_dir: Path,
    untrained_model_dir: Path,
    small_dataset,
    mlflow_server: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    name = "cc-strong"
    old = register_model_version(untrained_model_dir, tracking_uri=mlflow_server, model_name=name)
    promote(mlflow_server, name, old.version)
    history = tmp_path / "candidate"
    shutil.copytree(trained_model_dir, history)
    (history / "training_history.json").write_text(
        json.dumps(
            [{"epoch": 1, "loss": 0.6, "val_roc_auc": 0.7}, {"epoch": 2, "loss": 0.4, "val_roc_auc": 0.8}]
        )
    )
    result, outputs = _evaluate(history, small_dataset.holdout, mlflow_server, name, tmp_path / "eval")
    assert result.approved, result.record["decision"]["reasons"]
    assert _champion_checks(result) == {"roc_auc vs champion": True, "pr_auc vs champion": True}
    assert result.record["model"]["training_history"]["epochs"] == 2

    new = _register(outputs, mlflow_server, name)
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    version = client.get_model_version(name, new)
    assert version_for_alias(mlflow_server, name, CANDIDATE) == new
    assert version_for_alias(mlflow_server, name, CHAMPION) == old.version, "registering never promotes"
    assert version.tags["champion_compared"] == old.version
    assert version.tags["approved_by"] == "kfp-cicd quality gate (automated)"
    assert float(version.tags["operating_threshold"]) == pytest.approx(result.operating_threshold)
    assert version.tags["model_digest"] == result.model_digest
    assert version.description.startswith("# Model card: cc-strong")
    stored = {a.path for a in client.list_artifacts(version.run_id, "audit")}
    assert stored == {
        "audit/decision.json",
        "audit/audit_record.json",
        "audit/model_card.md",
        "audit/evaluation_report.html",
    }
    curve = client.get_metric_history(version.run_id, "training/loss")
    assert [(m.step, m.value) for m in curve] == [(1, 0.6), (2, 0.4)]

    assert promote(mlflow_server, name, new) == old.version
    assert main(["rollback", "--model", name, "--tracking-uri", mlflow_server]) == 0
    assert f"champion is version {old.version} again" in capsys.readouterr().out
    assert version_for_alias(mlflow_server, name, CHAMPION) == old.version
    assert version_for_alias(mlflow_server, name, PREVIOUS) == new
    assert client.get_model_version(name, new).tags["rolled_back_to"] == old.version
    assert main(["registry", "show", "--model", name, "--tracking-uri", mlflow_server]) == 0
    shown = capsys.readouterr().out
    assert f"version {new:>4}  [candidate, previous]" in shown and "rolled_back_at" in shown


def test_register_refuses_a_model_other_than_the_evaluated_one(
    trained_model_dir: Path, small_dataset, mlflow_server: str, tmp_path: Path
) -> None:
    result, outputs = _evaluate(trained_model_dir, small_dataset.holdout, mlflow_server, "cc-swap", tmp_path)
    assert result.approved
    swapped = OutputPaths(**{**outputs.__dict__, "operating_model": str(trained_model_dir)})
    with pytest.raises(RegistryError, match="not the model the evaluation gate approved"):
        _register(swapped, mlflow_server, "cc-swap")
    with pytest.raises(RegistryError, match="no registered model named 'cc-swap'"):
        list_versions(mlflow_server, "cc-swap")


def test_rollback_bad_references_give_clear_errors_and_change_nothing(
    untrained_model_dir: Path, mlflow_server: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(RegistryError, match="no registered model named 'nobody'"):
        rollback(mlflow_server, "nobody")
    only = register_model_version(untrained_model_dir, tracking_uri=mlflow_server, model_name="cc-once")
    with pytest.raises(RegistryError, match="no 'champion' alias"):
        rollback(mlflow_server, "cc-once")
    promote(mlflow_server, "cc-once", only.version)
    assert main(["rollback", "--model", "cc-once", "--tracking-uri", mlflow_server]) == 2
    assert "no 'previous' alias" in capsys.readouterr().err
    assert version_for_alias(mlflow_server, "cc-once", CHAMPION) == only.version
    assert version_for_alias(mlflow_server, "cc-once", PREVIOUS) is None
    with pytest.raises(DataError, match="model_name 'bad name!' is not valid"):
        rollback(mlflow_server, "bad name!")
