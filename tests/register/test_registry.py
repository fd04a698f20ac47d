"""The MLflow registry: versions, lineage tags, aliases; on a SQLite store and a real mlflow server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from kfp_cicd.components.register.task import run_register_task
from kfp_cicd.errors import DataError, RegistryError
from kfp_cicd.model.integrity import verify_model
from kfp_cicd.registry.aliases import CANDIDATE, CHAMPION, PREVIOUS, promote, set_alias
from kfp_cicd.registry.client import download_version, storage_location, version_for_alias
from kfp_cicd.registry.registration import register_model_version


def test_register_creates_versions_with_lineage_and_candidate_alias(
    trained_model_dir: Path, sqlite_uri: str
) -> None:
    first = register_model_version(
        trained_model_dir,
        tracking_uri=sqlite_uri,
        model_name="fraud",
        tags={"data_fingerprint": "sha256:abc"},
        metrics={"roc_auc": 0.9},
    )
    second = register_model_version(trained_model_dir, tracking_uri=sqlite_uri, model_name="fraud")
    assert (first.version, second.version) == ("1", "2")
    assert version_for_alias(sqlite_uri, "fraud", CANDIDATE) == "2"
    client = MlflowClient(tracking_uri=sqlite_uri, registry_uri=sqlite_uri)
    tags = client.get_model_version("fraud", "1").tags
    assert tags["data_fingerprint"] == "sha256:abc"
    assert tags["model_digest"] == verify_model(trained_model_dir)
    assert client.get_run(first.run_id).data.metrics["roc_auc"] == pytest.approx(0.9)


def test_artifacts_live_beside_the_sqlite_store(
    trained_model_dir: Path, sqlite_uri: str, tmp_path: Path
) -> None:
    registered = register_model_version(trained_model_dir, tracking_uri=sqlite_uri, model_name="m")
    location = storage_location(sqlite_uri, "m", registered.version)
    assert location.startswith((tmp_path / "mlartifacts").as_uri())
    local = download_version(sqlite_uri, "m", registered.version, tmp_path / "download")
    assert (local / "MLmodel").is_file()


def _aliases(uri: str, name: str) -> tuple[str | None, str | None]:
    return version_for_alias(uri, name, CHAMPION), version_for_alias(uri, name, PREVIOUS)


def test_promote_keeps_the_old_champion_as_previous(trained_model_dir: Path, sqlite_uri: str) -> None:
    for _ in range(3):
        register_model_version(trained_model_dir, tracking_uri=sqlite_uri, model_name="m")
    assert promote(sqlite_uri, "m", "1") is None
    assert version_for_alias(sqlite_uri, "m", PREVIOUS) is None
    assert promote(sqlite_uri, "m", "3") == "1"
    assert _aliases(sqlite_uri, "m") == ("3", "1")
    assert promote(sqlite_uri, "m", "3") == "3", "promoting the champion again changes nothing"
    assert version_for_alias(sqlite_uri, "m", PREVIOUS) == "1"
    with pytest.raises(RegistryError):
        promote(sqlite_uri, "m", "9")
    assert _aliases(sqlite_uri, "m") == ("3", "1")


def test_unknown_alias_is_none_and_missing_version_is_refused(
    trained_model_dir: Path, sqlite_uri: str
) -> None:
    register_model_version(trained_model_dir, tracking_uri=sqlite_uri, model_name="m")
    set_alias(sqlite_uri, "m", CHAMPION, "1")
    assert version_for_alias(sqlite_uri, "m", "nope") is None
    with pytest.raises(RegistryError, match="version 7"):
        set_alias(sqlite_uri, "m", CHAMPION, "7")
    assert version_for_alias(sqlite_uri, "m", CHAMPION) == "1", "a failed move keeps the alias"


@pytest.mark.parametrize(
    ("name", "alias", "message"),
    [
        ("bad name!", CANDIDATE, "model_name 'bad name!' is not valid"),
        ("ok", "v3", "reserved for versions"),
        ("ok", "9lives", "invalid alias"),
    ],
)
def test_bad_names_and_aliases_are_refused_before_anything_is_written(
    trained_model_dir: Path, sqlite_uri: str, tmp_path: Path, name: str, alias: str, message: str
) -> None:
    with pytest.raises((RegistryError, DataError), match=message):
        register_model_version(trained_model_dir, tracking_uri=sqlite_uri, model_name=name, alias=alias)
    assert not (tmp_path / "mlflow.db").exists()


def test_a_directory_that_is_not_a_model_is_refused(tmp_path: Path, sqlite_uri: str) -> None:
    with pytest.raises(RegistryError, match="not an MLflow model directory"):
        register_model_version(tmp_path, tracking_uri=sqlite_uri, model_name="m")


def test_register_task_refuses_a_rejected_model(
    trained_model_dir: Path, sqlite_uri: str, tmp_path: Path
) -> None:
    decision = tmp_path / "decision.json"
    decision.write_text(json.dumps({"approved": False, "reasons": ["roc_auc FAILED"]}))
    with pytest.raises(RegistryError, match="did not approve"):
        run_register_task(
            model_dir=str(trained_model_dir),
            metrics={},
            decision_path=str(decision),
            tracking_uri=sqlite_uri,
            model_name="m",
            data_fingerprint="sha256:0",
            train_data="t.csv",
            pipeline_job_name="j",
            pipeline_job_id="1",
        )


def test_register_and_promote_on_a_real_mlflow_server(
    trained_model_dir: Path, mlflow_server: str, tmp_path: Path
) -> None:
    decision = tmp_path / "decision.json"
    decision.write_text(json.dumps({"approved": True, "reasons": ["roc_auc passed"]}))
    version, model_uri, location = run_register_task(
        model_dir=str(trained_model_dir),
        metrics={"roc_auc": 0.9, "note": "text is skipped"},
        decision_path=str(decision),
        tracking_uri=mlflow_server,
        model_name="served",
        data_fingerprint="sha256:feed",
        train_data="train.csv",
        pipeline_job_name="job",
        pipeline_job_id="42",
    )
    assert model_uri == f"models:/served/{version}"
    assert location.startswith("file://"), "with --no-serve-artifacts the real location comes back"
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    tags = client.get_model_version("served", version).tags
    assert tags["pipeline_job_id"] == "42" and tags["gate_decision"] == "approved"
    assert tags["code_revision"]
    set_alias(mlflow_server, "served", CHAMPION, version)
    assert version_for_alias(mlflow_server, "served", CHAMPION) == version
    local = download_version(mlflow_server, "served", version, tmp_path / "dl")
    assert (local / "MLmodel").is_file()
    shutil.rmtree(local)
