"""The skew/drift check with real TFDV, the retraining decision, and the registry side of the loop."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kfp_cicd.components.monitor.baseline import (
    FROM_STATISTICS,
    FROM_TRAIN_DATA,
    download_statistics,
    find_champion_baseline,
)
from kfp_cicd.components.monitor.decision import (
    RetrainingDecision,
    comparisons,
    decide_from_comparisons,
    decide_without_champion,
)
from kfp_cicd.components.monitor.drift_job import DriftRequest, DriftResult, run_drift_job
from kfp_cicd.components.monitor.lineage import record_trigger
from kfp_cicd.components.monitor.monitoring import MonitoringOutputs, check_production_drift
from kfp_cicd.components.register.task import run_register_task
from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_dataset, generate_days
from kfp_cicd.data.tables import read_table, write_table
from kfp_cicd.errors import DataError, KfpCicdError, RegistryError
from kfp_cicd.registry.aliases import CHAMPION, set_alias
from kfp_cicd.registry.client import client_for, version_tags
from kfp_cicd.registry.monitoring_windows import find_previous_window
from kfp_cicd.registry.registration import register_model_version
from kfp_cicd.registry.tags import TRAINING_STATISTICS_TAG
from kfp_cicd.tfdv.options import ValidationOptions

MODEL = "fraud-detector"
EXTERNAL = re.compile(r"https?://|<script[^>]*\bsrc\s*=|<link\b|@import|<iframe|src\s*=\s*['\"]//", re.I)


def assert_self_contained(page: str) -> None:
    """The page loads nothing from elsewhere: no URL, no script source, no stylesheet, no frame."""
    found = EXTERNAL.findall(page)
    assert not found, f"the page references external resources: {found[:5]}"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("drift-data")
    generate_dataset(directory, rows=6_000, seed=31)
    generate_days(directory, days=7, rows_per_day=3_000, drift=0.25, seed=31)
    return directory


@pytest.fixture(scope="module")
def quiet(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> DriftResult:
    """Day 1 (no shift) against statistics computed from the training table."""
    return run_drift_job(
        DriftRequest(
            data=str(data_dir / "day1.csv"),
            label_column=LABEL_COLUMN,
            baseline_data=str(data_dir / "train.csv"),
            options=ValidationOptions(drift_default_threshold=0.15),
        ),
        tmp_path_factory.mktemp("quiet"),
    )


def test_a_day_with_the_training_distribution_has_no_skew(quiet: DriftResult) -> None:
    assert quiet.rows == 3000 and quiet.baseline_rows == 4800
    assert quiet.label_dropped
    assert LABEL_COLUMN not in {d["feature"] for d in quiet.skew}
    assert len(quiet.skew) == 24 and all(d["value"] is not None for d in quiet.skew)
    assert quiet.skewed == [], quiet.skewed
    assert quiet.drift == [] and quiet.previous_rows == 0, "no previous window: no drift measured"
    assert quiet.anomalies == []
    for name in ("production_stats.pb", "baseline_stats.pb", "stats.html"):
        assert (quiet.output_dir / name).stat().st_size > 0
    assert not (quiet.output_dir / "previous_stats.pb").exists()
    assert_self_contained((quiet.output_dir / "stats.html").read_text())


def test_a_shifted_unlabelled_day_is_skewed_against_stored_statistics(
    quiet: DriftResult, data_dir: Path, tmp_path: Path
) -> None:
    """Stored statistics (as register_model logs them) work as baseline; a window without labels too."""
    window = read_table(str(data_dir / "day7.csv")).drop(columns=[LABEL_COLUMN])
    write_table(window, str(tmp_path / "day7-unlabelled.parquet"))
    result = run_drift_job(
        DriftRequest(
            data=str(tmp_path / "day7-unlabelled.parquet"),
            label_column=LABEL_COLUMN,
            baseline_statistics=str(quiet.output_dir / "baseline_stats.pb"),
            options=ValidationOptions(drift_default_threshold=0.15),
        ),
        tmp_path / "job",
    )
    assert not result.label_dropped
    skewed = {d["feature"]: d for d in result.skewed}
    assert {"amount", "channel"} <= set(skewed), result.skew
    assert skewed["channel"]["metric"] == "L_INFINITY"
    assert skewed["amount"]["metric"] == "JENSEN_SHANNON_DIVERGENCE"
    assert all(d["value"] > d["threshold"] for d in skewed.values())
    assert result.drift == [], "no previous window was given"


def test_the_skew_is_tfdvs_skew_comparator_not_the_drift_comparator(
    quiet: DriftResult, data_dir: Path, tmp_path: Path
) -> None:
    """With a previous window, the job measures both: skew vs training and drift vs that window.

    The previous window here is day 1 (training's distribution), so day 7's drift against it and
    its skew against training both flag the shifted features; against the same window (day 7 as
    its own previous window) drift is zero while the skew stays: the two are separate comparisons.
    """
    shifted = run_drift_job(
        DriftRequest(
            data=str(data_dir / "day7.csv"),
            label_column=LABEL_COLUMN,
            baseline_statistics=str(quiet.output_dir / "baseline_stats.pb"),
            previous_statistics=str(quiet.output_dir / "production_stats.pb"),
            previous_name="day1.csv",
            options=ValidationOptions(drift_default_threshold=0.15),
        ),
        tmp_path / "vs-day1",
    )
    assert shifted.previous_rows == 3000
    assert {"amount", "channel"} <= {d["feature"] for d in shifted.skewed}, shifted.skew
    assert "channel" in {d["feature"] for d in shifted.drifted}, shifted.drift
    assert [d["feature"] for d in shifted.drift] == [d["feature"] for d in shifted.skew]
    assert (shifted.output_dir / "previous_stats.pb").stat().st_size > 0
    same = run_drift_job(
        DriftRequest(
            data=str(data_dir / "day7.csv"),
            label_column=LABEL_COLUMN,
            baseline_statistics=str(quiet.output_dir / "baseline_stats.pb"),
            previous_statistics=str(shifted.output_dir / "production_stats.pb"),
            options=ValidationOptions(drift_default_threshold=0.15),
        ),
        tmp_path / "vs-itself",
    )
    assert same.drifted == [] and all(d["value"] < 1e-6 for d in same.drift), same.drift
    assert [d["feature"] for d in same.skewed] == [d["feature"] for d in shifted.skewed]


def test_per_feature_thresholds_turn_checks_off(data_dir: Path, tmp_path: Path, quiet: DriftResult) -> None:
    result = run_drift_job(
        DriftRequest(
            data=str(data_dir / "day7.csv"),
            label_column=LABEL_COLUMN,
            baseline_statistics=str(quiet.output_dir / "baseline_stats.pb"),
            options=ValidationOptions(drift_default_threshold=-1.0, drift_thresholds={"channel": 0.5}),
        ),
        tmp_path,
    )
    assert [d["feature"] for d in result.skew] == ["channel"]
    assert result.skewed == []


def test_unusable_inputs_are_named(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.csv does not exist"):
        run_drift_job(
            DriftRequest(
                data=str(tmp_path / "missing.csv"),
                label_column=LABEL_COLUMN,
                baseline_data=str(data_dir / "train.csv"),
            ),
            tmp_path / "a",
        )
    with pytest.raises(DataError, match="numeric_histogram"):
        DriftRequest(
            data="x.csv", label_column=LABEL_COLUMN, baseline_data="y.csv", numeric_histogram="fancy"
        )
    with pytest.raises(DataError, match="baseline"):
        DriftRequest(data="x.csv", label_column=LABEL_COLUMN)
    (tmp_path / "not_stats.pb").write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match=r"not_stats\.pb"):
        run_drift_job(
            DriftRequest(
                data=str(data_dir / "day1.csv"),
                label_column=LABEL_COLUMN,
                baseline_statistics=str(tmp_path / "not_stats.pb"),
            ),
            tmp_path / "b",
        )


def _measurement(feature: str, value: float | None, threshold: float = 0.15) -> dict:
    return {
        "feature": feature,
        "metric": "L_INFINITY",
        "value": value,
        "threshold": threshold,
        "drifted": value is not None and value > threshold,
    }


def test_decision_names_what_is_skewed_or_the_closest_feature() -> None:
    skewed = decide_from_comparisons(
        MODEL, "3", "day7.csv", [_measurement("channel", 0.22), _measurement("country", 0.01)], "b"
    )
    assert skewed.retrain and skewed.trigger == "skew" and skewed.skewed_features == ["channel"]
    assert skewed.triggered_by == ["skew"] and skewed.drifted_features == ["channel"]
    assert skewed.reason.startswith(
        "day7.csv: training-serving skew in 1 of 2 features against champion version 3's training "
        "statistics: channel (L_INFINITY 0.220 > 0.15); no previous window stored"
    ), skewed.reason
    quiet = decide_from_comparisons(
        MODEL,
        "3",
        "day1.csv",
        [_measurement("channel", 0.05), _measurement("country", 0.12)],
        "b",
        anomaly_count=2,
    )
    assert not quiet.retrain and quiet.trigger == "no_drift" and quiet.triggered_by == []
    assert "closest: country (L_INFINITY 0.120 <= 0.15)" in quiet.reason
    assert "window drift not measured" in quiet.reason
    assert "nothing retrains" in quiet.reason and "2 schema anomalies" in quiet.reason
    nothing = decide_from_comparisons(MODEL, "3", "d.csv", [_measurement("channel", None)], "b")
    assert not nothing.retrain and "no feature" in nothing.reason
    first = decide_without_champion(MODEL, "d.csv")
    assert first.retrain and first.trigger == "no_champion" and "no champion" in first.reason


def test_window_drift_alone_triggers_and_both_comparisons_are_kept_per_feature() -> None:
    skew = [_measurement("channel", 0.05), _measurement("country", 0.02)]
    drift = [_measurement("channel", 0.31), _measurement("country", 0.01)]
    decision = decide_from_comparisons(
        MODEL, "3", "day8.csv", skew, "b", drift=drift, previous_window="previous window day7.csv"
    )
    assert decision.retrain and decision.trigger == "window_drift"
    assert decision.triggered_by == ["window_drift"] and decision.window_drifted_features == ["channel"]
    assert decision.skewed_features == [] and decision.drifted_features == ["channel"]
    assert decision.reason.startswith(
        "day8.csv: drift in 1 of 2 features against the previous window day7.csv: channel "
        "(L_INFINITY 0.310 > 0.15); no skew against champion version 3's training statistics"
    ), decision.reason
    assert decision.comparisons[0] == {
        "feature": "channel",
        "metric": "L_INFINITY",
        "threshold": 0.15,
        "skew": 0.05,
        "skewed": False,
        "window_drift": 0.31,
        "window_drifted": True,
    }
    both = decide_from_comparisons(
        MODEL,
        "3",
        "day8.csv",
        [_measurement("channel", 0.2)],
        "b",
        drift=[_measurement("channel", 0.3)],
        previous_window="previous window day7.csv",
    )
    assert both.trigger == "skew" and both.triggered_by == ["skew", "window_drift"]
    calm = decide_from_comparisons(
        MODEL, "3", "d.csv", skew, "b", drift=[_measurement("channel", 0.1)], previous_window="p"
    )
    assert not calm.retrain and "no drift against the p (closest: channel" in calm.reason
    assert comparisons(skew, [])[1]["window_drift"] is None


def test_decision_round_trips_and_rejects_other_files(tmp_path: Path) -> None:
    decision = decide_without_champion(MODEL, "d.csv")
    (tmp_path / "decision.json").write_text(decision.to_json())
    assert RetrainingDecision.read(tmp_path / "decision.json") == decision
    (tmp_path / "other.json").write_text(json.dumps({"approved": True}))
    with pytest.raises(KfpCicdError, match="not a monitoring decision"):
        RetrainingDecision.read(tmp_path / "other.json")


@pytest.fixture()
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _register(model_dir: Path, tracking_uri: str, tmp_path: Path, **kwargs: str) -> str:
    decision = tmp_path / "decision.json"
    decision.write_text(json.dumps({"approved": True, "reasons": ["all checks passed"]}))
    version, _, _ = run_register_task(
        model_dir=str(model_dir),
        metrics={"roc_auc": 0.9},
        decision_path=str(decision),
        tracking_uri=tracking_uri,
        model_name=MODEL,
        data_fingerprint="sha256:0",
        train_data=kwargs.pop("train_data", "/data/train.csv"),
        pipeline_job_name="job",
        pipeline_job_id=kwargs.pop("pipeline_job_id", "42"),
        **kwargs,
    )
    return version


def test_register_stores_training_statistics_as_the_monitoring_baseline(
    untrained_model_dir: Path, tracking_uri: str, tmp_path: Path, quiet: DriftResult
) -> None:
    statistics = tmp_path / "statistics"
    statistics.mkdir()
    (statistics / "train_stats.pb").write_bytes((quiet.output_dir / "baseline_stats.pb").read_bytes())
    version = _register(
        untrained_model_dir,
        tracking_uri,
        tmp_path,
        statistics_dir=str(statistics),
        trigger_reason="drift in 2 of 24 features",
    )
    tags = version_tags(tracking_uri, MODEL, version)
    assert tags[TRAINING_STATISTICS_TAG].endswith("/statistics/train_stats.pb")
    assert tags["retraining_reason"] == "drift in 2 of 24 features"
    assert find_champion_baseline(tracking_uri, MODEL) is None, "no champion yet"
    set_alias(tracking_uri, MODEL, CHAMPION, version)
    baseline = find_champion_baseline(tracking_uri, MODEL)
    assert baseline.source == FROM_STATISTICS and baseline.version == version
    local = download_statistics(baseline, tracking_uri, tmp_path / "download")
    assert local.read_bytes() == (statistics / "train_stats.pb").read_bytes()


def test_register_refuses_a_statistics_folder_without_train_stats(
    untrained_model_dir: Path, tracking_uri: str, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegistryError, match=r"train_stats\.pb"):
        _register(untrained_model_dir, tracking_uri, tmp_path, statistics_dir=str(tmp_path / "empty"))
    assert client_for(tracking_uri).search_model_versions(f"name='{MODEL}'") == []


def test_versions_without_statistics_fall_back_to_their_training_data(
    untrained_model_dir: Path, tracking_uri: str, tmp_path: Path, data_dir: Path
) -> None:
    version = _register(untrained_model_dir, tracking_uri, tmp_path, train_data=str(data_dir / "train.csv"))
    set_alias(tracking_uri, MODEL, CHAMPION, version)
    baseline = find_champion_baseline(tracking_uri, MODEL)
    assert baseline.source == FROM_TRAIN_DATA and baseline.location == str(data_dir / "train.csv")
    bare = register_model_version(untrained_model_dir, tracking_uri=tracking_uri, model_name=MODEL)
    set_alias(tracking_uri, MODEL, CHAMPION, bare.version)
    with pytest.raises(RegistryError, match="neither"):
        find_champion_baseline(tracking_uri, MODEL)


def test_monitoring_task_without_champion_decides_to_train_the_first(
    tracking_uri: str, tmp_path: Path
) -> None:
    outputs = MonitoringOutputs(
        *(
            str(tmp_path / name)
            for name in ("decision.json", "report.md", "report.html", "stats", "view.html")
        ),
        metadata={},
    )
    decision = check_production_drift(
        production_data="day1.csv",
        tracking_uri=tracking_uri,
        model_name=MODEL,
        label_column=LABEL_COLUMN,
        schema_path="",
        options=ValidationOptions(),
        numeric_histogram="auto",
        outputs=outputs,
    )
    assert decision.retrain and decision.trigger == "no_champion"
    assert RetrainingDecision.read(tmp_path / "decision.json") == decision
    assert (tmp_path / "report.md").read_text().startswith("# Monitoring: RETRAIN")
    assert outputs.metadata["trigger"] == "no_champion"
    for page in ("report.html", "view.html"):
        assert_self_contained((tmp_path / page).read_text())
    assert find_previous_window(tracking_uri, MODEL, "sha256:x") is None, "nothing stored without a champion"


def test_trigger_is_recorded_on_the_versions_of_this_run_only(
    untrained_model_dir: Path, tracking_uri: str, tmp_path: Path
) -> None:
    other = _register(untrained_model_dir, tracking_uri, tmp_path, pipeline_job_id="1")
    ours = _register(untrained_model_dir, tracking_uri, tmp_path, pipeline_job_id="2")
    decision = decide_from_comparisons(MODEL, other, "day7.csv", [_measurement("channel", 0.3)], "b")
    record = record_trigger(tracking_uri, MODEL, "2", decision, monitoring_report="file:///r.md")
    assert record.versions == (ours,)
    tags = version_tags(tracking_uri, MODEL, ours)
    assert tags["retraining_trigger"] == "skew" and tags["retraining_reason"] == decision.reason
    assert tags["retraining_replaces_champion"] == other and tags["retraining_report"] == "file:///r.md"
    assert "retraining_trigger" not in version_tags(tracking_uri, MODEL, other)
    nothing = record_trigger(tracking_uri, MODEL, "3", decision)
    assert nothing.versions == () and "nothing was registered" in nothing.summary()
    with pytest.raises(KfpCicdError, match="pipeline_job_id"):
        record_trigger(tracking_uri, MODEL, "", decision)


def _outputs(directory: Path) -> MonitoringOutputs:
    return MonitoringOutputs(
        *(
            str(directory / name)
            for name in ("decision.json", "report.md", "report.html", "stats", "view.html")
        ),
        metadata={},
    )


def _check(window: Path, tracking_uri: str, directory: Path) -> RetrainingDecision:
    outputs = _outputs(directory)
    decision = check_production_drift(
        production_data=str(window),
        tracking_uri=tracking_uri,
        model_name=MODEL,
        label_column=LABEL_COLUMN,
        schema_path="",
        options=ValidationOptions(drift_default_threshold=0.15),
        numeric_histogram="auto",
        outputs=outputs,
    )
    assert RetrainingDecision.read(directory / "decision.json") == decision
    for page in ("report.html", "view.html"):
        assert_self_contained((directory / page).read_text())
    return decision


def test_each_window_is_compared_with_training_and_with_the_window_before(
    untrained_model_dir: Path, tracking_uri: str, tmp_path: Path, quiet: DriftResult, data_dir: Path
) -> None:
    """Real TFDV and MLflow: day 1 (clean, first window), day 7 (shifted), day 7 again (a retry)."""
    statistics = tmp_path / "statistics"
    statistics.mkdir()
    (statistics / "train_stats.pb").write_bytes((quiet.output_dir / "baseline_stats.pb").read_bytes())
    champion = _register(untrained_model_dir, tracking_uri, tmp_path, statistics_dir=str(statistics))
    set_alias(tracking_uri, MODEL, CHAMPION, champion)

    first = _check(data_dir / "day1.csv", tracking_uri, tmp_path / "first")
    assert not first.retrain and first.trigger == "no_drift", first.reason
    assert first.previous_window == "" and first.skewed_features == []
    assert "no previous window stored (first checked window)" in first.reason
    assert first.features_compared == 24 and all(c["window_drift"] is None for c in first.comparisons)
    report = (tmp_path / "first" / "report.md").read_text()
    assert "drift baseline: none; no previous window was stored, this is the first checked window" in report
    assert "| amount | JENSEN_SHANNON_DIVERGENCE | 0.15 |" in report and "no previous window |" in report
    assert sorted(p.name for p in (tmp_path / "first" / "stats").iterdir()) == [
        "baseline_stats.pb",
        "production_stats.pb",
    ]
    stored = find_previous_window(tracking_uri, MODEL, "sha256:other")
    assert stored is not None and stored.window.endswith("day1.csv") and stored.champion_version == champion
    assert first.window_statistics == stored.statistics_uri
    assert stored.statistics_uri.endswith("/window_statistics/window_stats.pb")
    run = client_for(tracking_uri).get_run(stored.run_id)
    assert client_for(tracking_uri).get_experiment(run.info.experiment_id).name == "fraud-detector/monitoring"
    assert run.data.tags["retrain"] == "false" and run.data.tags["trigger"] == "no_drift"
    assert "skew.amount" in run.data.metrics and not any(
        k.startswith("window_drift.") for k in run.data.metrics
    )

    second = _check(data_dir / "day7.csv", tracking_uri, tmp_path / "second")
    assert second.retrain and second.trigger == "skew", second.reason
    assert second.triggered_by[0] == "skew" and {"amount", "channel"} <= set(second.skewed_features)
    assert (
        "day7.csv: training-serving skew in " in second.reason and "channel (L_INFINITY 0." in second.reason
    )
    assert "day1.csv" in second.previous_window and stored.run_id in second.previous_window
    assert "channel" in second.window_drifted_features, second.comparisons
    assert second.triggered_by == ["skew", "window_drift"]
    assert "against the previous window" in second.reason and "day1.csv" in second.reason
    channel = next(c for c in second.comparisons if c["feature"] == "channel")
    assert channel["skewed"] and channel["window_drifted"] and channel["window_drift"] > channel["threshold"]
    report = (tmp_path / "second" / "report.md").read_text()
    assert "triggered by: training-serving skew" in report and "and drift (window vs the previous" in report
    assert "| channel | L_INFINITY | 0.15 |" in report and "**PAST**" in report
    assert (tmp_path / "second" / "stats" / "previous_stats.pb").stat().st_size > 0
    view = (tmp_path / "second" / "report.html").read_text()
    assert "drift vs previous window" in view and "channel" in view

    # A retried check of the same window compares it with the window before, not with itself.
    again = _check(data_dir / "day7.csv", tracking_uri, tmp_path / "again")
    assert (
        "day1.csv" in again.previous_window
        and again.window_drifted_features == second.window_drifted_features
    )
    assert find_previous_window(tracking_uri, MODEL, "sha256:other").window.endswith("day7.csv")
