"""The logistic-regression baseline: fitted on the candidate's own preprocessing and training data, it
rejects a broken candidate, passes a decent one, is stated when off, and shows in every artifact."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kfp_cicd.components.evaluate.audit_record import AuditContext
from kfp_cicd.components.evaluate.baseline import MAX_ROWS, stratified_sample
from kfp_cicd.components.evaluate.evaluation import (
    EvaluationSettings,
    MetricSinks,
    OutputPaths,
    evaluate_release,
    run_evaluation_task,
    write_operating_model,
)
from kfp_cicd.components.evaluate.gate import BASELINE_OFF_NOTE, GatePolicy
from kfp_cicd.data.synthetic import (
    CATEGORICAL_FEATURES,
    LABEL_COLUMN,
    NUMERIC_FEATURES,
    generate_transactions,
)
from kfp_cicd.errors import DataError
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.integrity import write_checksums
from kfp_cicd.model.labels import BinaryLabels

BASELINE_ON = GatePolicy(baseline_metrics=("roc_auc", "log_loss"), baseline_margin=0.02)


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_transactions(12_000, seed=3), generate_transactions(6_000, seed=4)


@pytest.fixture(scope="module")
def train_csv(frames, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("baseline-data") / "train.csv"
    frames[0].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def decent_model(quick_trainer, frames) -> Path:
    """A few unweighted epochs: calibrated probabilities, as good as a linear model or better."""
    return quick_trainer(frames[0], "decent", epochs=4, class_weighted=False)


@pytest.fixture(scope="module")
def shuffled_model(quick_trainer, frames) -> Path:
    """Trained like ``decent_model`` but on labels shuffled against the rows: a training bug."""
    shuffled = frames[0].copy()
    shuffled[LABEL_COLUMN] = np.random.default_rng(0).permutation(shuffled[LABEL_COLUMN].to_numpy())
    return quick_trainer(shuffled, "shuffled", epochs=4, class_weighted=False)


def _settings(policy: GatePolicy = BASELINE_ON, **changes: object) -> EvaluationSettings:
    return EvaluationSettings(policy=policy, latency_repeats=1, **changes)


def _baseline_checks(decision) -> dict[str, bool]:
    return {c.metric: c.passed for c in decision.checks if c.kind == "baseline"}


def test_baseline_check_rejects_a_candidate_trained_on_shuffled_labels_and_passes_a_decent_one(
    decent_model: Path, shuffled_model: Path, frames, train_csv: Path, tmp_path: Path
) -> None:
    holdout = frames[1]
    decent, _ = evaluate_release(decent_model, holdout, _settings(), tmp_path / "decent", str(train_csv))
    assert _baseline_checks(decent.decision) == {"roc_auc vs baseline": True, "log_loss vs baseline": True}, (
        decent.decision.reasons
    )
    assert decent.decision.approved

    broken, _ = evaluate_release(shuffled_model, holdout, _settings(), tmp_path / "broken", str(train_csv))
    assert _baseline_checks(broken.decision) == {"roc_auc vs baseline": False, "log_loss vs baseline": False}
    assert not broken.decision.approved
    assert any(r.startswith("roc_auc vs baseline") and r.endswith("FAILED") for r in broken.decision.reasons)
    assert broken.metrics["roc_auc"] < 0.65 < 0.85 < broken.baseline.report.metrics["roc_auc"]

    # The baseline depends on the training data and the (identically fitted) preprocessing, not the network.
    baseline_auc = decent.baseline.report.metrics["roc_auc"]
    assert broken.baseline.report.metrics["roc_auc"] == pytest.approx(baseline_auc)
    assert decent.baseline.fitted_rows == decent.baseline.training_rows == 12_000
    assert not decent.baseline.sampled and decent.baseline.converged


def test_baseline_off_is_stated_in_the_decision_not_passed_silently(
    decent_model: Path, frames, tmp_path: Path
) -> None:
    outcome, _ = evaluate_release(decent_model, frames[1], _settings(GatePolicy()), tmp_path, train_data="")
    assert outcome.baseline is None
    assert _baseline_checks(outcome.decision) == {}
    assert BASELINE_OFF_NOTE in outcome.decision.notes and BASELINE_OFF_NOTE in outcome.decision.reasons
    assert "baseline check off" in BASELINE_OFF_NOTE


def test_missing_or_unusable_training_data_fails_naming_train_data(
    decent_model: Path, frames, tmp_path: Path
) -> None:
    holdout = frames[1]
    with pytest.raises(DataError, match=r"train_data is empty.*baseline_metrics to ''"):
        evaluate_release(decent_model, holdout, _settings(), tmp_path, train_data="")
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(DataError, match=re.escape(f"train_data '{missing}' cannot be read for the baseline")):
        evaluate_release(decent_model, holdout, _settings(), tmp_path, train_data=str(missing))
    no_channel = tmp_path / "no_channel.csv"
    frames[0].drop(columns=["channel"]).head(500).to_csv(no_channel, index=False)
    message = "cannot train the baseline: data is missing feature columns ['channel']"
    with pytest.raises(DataError, match=re.escape(message)):
        evaluate_release(decent_model, holdout, _settings(), tmp_path, train_data=str(no_channel))


def test_large_training_data_is_sampled_stratified_and_the_report_says_so(
    decent_model: Path, frames, train_csv: Path, tmp_path: Path
) -> None:
    outcome, _ = evaluate_release(
        decent_model, frames[1], _settings(baseline_max_rows=3_000), tmp_path, str(train_csv)
    )
    baseline = outcome.baseline
    assert (baseline.fitted_rows, baseline.training_rows, baseline.sampled) == (3_000, 12_000, True)
    assert "a stratified sample of 3,000 of the 12,000 training rows (seed 0" in baseline.sentence()
    assert "stratified sample of 3,000" in outcome.baseline_note


def test_stratified_sample_keeps_each_class_share_and_is_repeatable() -> None:
    labels = (np.random.default_rng(1).random(50_000) < 0.02).astype(int)
    kept = stratified_sample(labels, 10_000, seed=0)
    assert len(kept) == len(np.unique(kept)) == 10_000 and np.all(np.diff(kept) > 0)
    assert labels[kept].mean() == pytest.approx(labels.mean(), abs=0.0005)
    assert np.array_equal(kept, stratified_sample(labels, 10_000, seed=0))
    assert not np.array_equal(kept, stratified_sample(labels, 10_000, seed=1))
    assert np.array_equal(stratified_sample(labels[:500], MAX_ROWS), np.arange(500)), "small: every row"


@pytest.fixture(scope="module")
def churn(frames, tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureSpec, pd.DataFrame, Path]:
    """The synthetic data with text classes ("churned" / "stayed") under another label name."""

    def relabel(frame: pd.DataFrame) -> pd.DataFrame:
        text = np.where(frame[LABEL_COLUMN] == 1, "churned", "stayed")
        return frame.drop(columns=[LABEL_COLUMN]).assign(outcome=text)

    train, holdout = relabel(frames[0]), relabel(frames[1])
    classes = BinaryLabels.infer(train["outcome"], "outcome")
    spec = FeatureSpec("outcome", NUMERIC_FEATURES, CATEGORICAL_FEATURES, classes)
    directory = tmp_path_factory.mktemp("churn")
    train.to_csv(directory / "train.csv", index=False)
    holdout.to_csv(directory / "holdout.csv", index=False)
    return spec, holdout, directory


def _with_threshold_rule(model_dir: Path, destination: Path, threshold: float, rule: str) -> Path:
    """A copy of ``model_dir`` whose config carries the threshold and rule training records."""
    shutil.copytree(model_dir, destination)
    config_path = destination / "artifacts" / "config.json"
    config = json.loads(config_path.read_text())
    config.update(decision_threshold=threshold, threshold_rule=rule)
    config_path.write_text(json.dumps(config, indent=2))
    write_checksums(destination)
    return destination


def test_every_artifact_shows_the_baseline_the_positive_class_and_the_threshold_rule(
    quick_trainer, churn, tmp_path: Path
) -> None:
    spec, _, data = churn
    trained = quick_trainer(
        pd.read_csv(data / "train.csv"), "churn", epochs=4, class_weighted=False, spec=spec
    )
    rule = "max F1 on the validation split"
    model = _with_threshold_rule(trained, tmp_path / "candidate", 0.2, rule)
    logged: dict[str, float] = {}
    matrices: list = []
    outputs = OutputPaths(
        decision=str(tmp_path / "decision.json"),
        operating_model=str(tmp_path / "op"),
        report=str(tmp_path / "report.html"),
        model_card=str(tmp_path / "card.md"),
        audit_record=str(tmp_path / "audit.json"),
    )
    settings = _settings(auto_slices=True, min_slice_rows=100, min_slice_positives=5)
    result = run_evaluation_task(
        model_dir=str(model),
        eval_data=str(data / "holdout.csv"),
        settings=settings,
        context=AuditContext(model_name="churn", train_data=str(data / "train.csv")),
        sinks=MetricSinks(logged.__setitem__, lambda names, matrix: matrices.append(names), lambda *_: None),
        outputs=outputs,
    )
    assert result.approved, result.record["decision"]["reasons"]
    assert matrices == [["stayed", "churned"]], "class names come from the data"
    assert {"baseline_roc_auc", "baseline_log_loss", "baseline_pr_auc", "baseline_fitted_rows"} <= set(logged)
    assert 0.85 < logged["baseline_roc_auc"] < 1 and logged["baseline_fitted_rows"] == 12_000

    decision = json.loads(Path(outputs.decision).read_text())
    assert [c["metric"] for c in decision["checks"] if c["kind"] == "baseline"] == [
        "roc_auc vs baseline",
        "log_loss vs baseline",
    ]
    assert decision["baseline"]["label"] == "logistic-regression baseline"
    assert decision["baseline"]["metrics"]["roc_auc"] == pytest.approx(logged["baseline_roc_auc"])

    record = json.loads(Path(outputs.audit_record).read_text())
    assert record["baseline"]["compared"] is True and record["baseline"]["fitted_rows"] == 12_000
    assert record["baseline"]["metrics"]["log_loss"] == pytest.approx(logged["baseline_log_loss"])
    assert record["model"]["classes"]["positive"] == "churned"
    assert "less frequent class" in record["model"]["classes"]["rule"]
    assert record["model"]["threshold_rule"] == record["operating_point"]["source"] == rule
    assert record["operating_point"]["threshold"] == pytest.approx(0.2)
    assert set(record["parameters"]["slice_keys"]) == {"auto"}
    auto_keys = {s["key"] for s in record["slices"]["segments"]}
    assert auto_keys == set(CATEGORICAL_FEATURES), "every synthetic categorical has 3-13 values"
    assert record["slices"]["note"].startswith("slice_keys 'auto'")

    card = Path(outputs.model_card).read_text()
    assert "positive class 'churned', negative class 'stayed'" in card
    assert "the positive class was chosen by: 'churned' is the less frequent class" in card
    assert "| metric | this model | logistic-regression baseline | champion |" in card
    assert f"Operating threshold 0.2000, chosen by: {rule}." in card
    assert "Baseline: logistic regression" in card

    page = Path(outputs.report).read_text()
    assert "<th>logistic-regression baseline</th>" in page
    assert "positive class <b>&#x27;churned&#x27;</b>" in page
    assert f"chosen by: {rule}" in page and "Baseline: logistic regression" in page
    for word in ("fraud", "legitimate"):
        assert word not in (card + page).lower()


def test_the_operating_model_names_the_rule_of_the_threshold_it_ships_with(
    decent_model: Path, tmp_path: Path
) -> None:
    cost_rule = "cost-optimal on the holdout (FN x 30, FP x 1)"
    model = _with_threshold_rule(decent_model, tmp_path / "candidate", 0.3, "max F1 on the validation split")
    write_operating_model(model, tmp_path / "operating", 0.07, cost_rule)
    config = json.loads((tmp_path / "operating" / "artifacts" / "config.json").read_text())
    assert (config["decision_threshold"], config["threshold_rule"]) == (0.07, cost_rule)

    older = _with_threshold_rule(decent_model, tmp_path / "older", 0.3, "")
    config_path = older / "artifacts" / "config.json"
    config_path.write_text(
        json.dumps({k: v for k, v in json.loads(config_path.read_text()).items() if k != "threshold_rule"})
    )
    write_checksums(older)
    outcome, _ = evaluate_release(
        older, pd.DataFrame(generate_transactions(2_000, seed=9)), _settings(GatePolicy()), tmp_path / "work"
    )
    assert outcome.operating_point.source == "the model's threshold", "older models: the fallback text"
    write_operating_model(older, tmp_path / "older-operating", 0.07, outcome.operating_point.source)
    shipped = json.loads((tmp_path / "older-operating" / "artifacts" / "config.json").read_text())
    assert shipped["threshold_rule"] == "the model's threshold"
