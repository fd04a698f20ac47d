"""Where monitoring keeps each checked window: runs of "<model>/monitoring" in a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfp_cicd.errors import RegistryError
from kfp_cicd.registry.client import client_for
from kfp_cicd.registry.monitoring_windows import (
    StoredWindow,
    download_window_statistics,
    find_previous_window,
    metric_name,
    monitoring_experiment,
    store_window,
)

MODEL = "fraud-detector"


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _store(tracking_uri: str, tmp_path: Path, window: str, digest: str, champion: str = "1") -> StoredWindow:
    statistics = tmp_path / f"{digest}.pb"
    statistics.write_bytes(digest.encode())
    return store_window(
        tracking_uri,
        MODEL,
        tags={"window": window, "window_digest": digest, "champion_version": champion, "trigger": "no_drift"},
        statistics_file=statistics,
        metrics={metric_name("skew", "amount"): 0.1, metric_name("skew", "odd/name (€)"): 0.2},
    )


def test_the_first_window_has_no_previous_one(tracking_uri: str) -> None:
    assert find_previous_window(tracking_uri, MODEL, "sha256:a") is None


def test_the_newest_window_with_other_bytes_is_the_previous_one(tracking_uri: str, tmp_path: Path) -> None:
    first = _store(tracking_uri, tmp_path, "gs://b/day1.csv", "sha256:a")
    second = _store(tracking_uri, tmp_path, "gs://b/day2.csv", "sha256:b", champion="2")
    found = find_previous_window(tracking_uri, MODEL, "sha256:c")
    assert found == second and found.champion_version == "2"
    assert find_previous_window(tracking_uri, MODEL, "sha256:b") == first, "a re-check skips its own window"
    local = download_window_statistics(tracking_uri, found, tmp_path / "download")
    assert local.name == "window_stats.pb" and local.read_bytes() == b"sha256:b"
    run = client_for(tracking_uri).get_run(second.run_id)
    assert run.info.run_name == "window day2.csv" and run.info.status == "FINISHED"
    assert run.data.tags["monitored_model"] == MODEL and run.data.tags["window"] == "gs://b/day2.csv"
    assert run.data.metrics == {"skew.amount": 0.1, "skew.odd_name ___": 0.2}
    experiment = client_for(tracking_uri).get_experiment(run.info.experiment_id)
    assert experiment.name == monitoring_experiment(MODEL) == "fraud-detector/monitoring"
    assert "day2.csv" in second.describe() and second.run_id in second.describe()


def test_an_unfinished_check_is_never_a_previous_window(tracking_uri: str, tmp_path: Path) -> None:
    first = _store(tracking_uri, tmp_path, "day1.csv", "sha256:a")
    client = client_for(tracking_uri)
    experiment = client.get_experiment_by_name(monitoring_experiment(MODEL))
    client.create_run(
        experiment.experiment_id,
        tags={"monitored_model": MODEL, "window": "day2.csv", "window_digest": "sha256:b"},
    )  # a check that died before it finished: status RUNNING
    assert find_previous_window(tracking_uri, MODEL, "sha256:c") == first


def test_windows_of_other_models_and_incomplete_tags_are_refused(tracking_uri: str, tmp_path: Path) -> None:
    _store(tracking_uri, tmp_path, "day1.csv", "sha256:a")
    assert find_previous_window(tracking_uri, "other-model", "sha256:c") is None
    with pytest.raises(RegistryError, match="window_digest"):
        store_window(
            tracking_uri, MODEL, tags={"window": "w", "champion_version": "1"}, statistics_file=tmp_path
        )
