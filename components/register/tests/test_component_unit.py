"""register_model through its Python function (``python_func``) into a real MLflow SQLite registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from component_testing import IMAGES, MODEL_NAME, input_artifact
from kfp.dsl import Artifact, Metrics, Model
from mlflow import MlflowClient

from kfp_cicd.components.register.component import build_component
from kfp_cicd.data.synthetic import DatasetFiles

METRICS = {"roc_auc": 0.81, "log_loss": 0.09}


def test_an_approved_model_becomes_the_candidate(
    dataset: DatasetFiles, model_dir: Path, approval: Path, tracking_uri: str
) -> None:
    register_model = build_component(IMAGES.runtime).python_func

    version, model_uri, storage_uri = register_model(
        model=input_artifact(Model, model_dir),
        decision=input_artifact(Artifact, approval),
        evaluation_metrics=input_artifact(Metrics, model_dir, METRICS),
        tracking_uri=tracking_uri,
        model_name=MODEL_NAME,
        data_fingerprint="sha256:abc",
        train_data=str(dataset.train),
        pipeline_job_id="job-1",
    )

    assert (version, model_uri) == ("1", f"models:/{MODEL_NAME}/1")
    assert storage_uri and not storage_uri.startswith("models:/")
    client = MlflowClient(tracking_uri=tracking_uri)
    registered = client.get_model_version_by_alias(MODEL_NAME, "candidate")
    assert str(registered.version) == "1"
    assert registered.tags["data_fingerprint"] == "sha256:abc"
    assert registered.tags["pipeline_job_id"] == "job-1"
    assert client.get_run(registered.run_id).data.metrics["roc_auc"] == pytest.approx(0.81)


def test_a_refused_model_is_not_registered(model_dir: Path, tmp_path: Path, tracking_uri: str) -> None:
    refused = tmp_path / "refused.json"
    refused.write_text(json.dumps({"approved": False, "reasons": ["roc_auc 0.52 < 0.6"]}))
    register_model = build_component(IMAGES.runtime).python_func

    with pytest.raises(Exception, match="did not approve"):
        register_model(
            model=input_artifact(Model, model_dir),
            evaluation_metrics=input_artifact(Metrics, model_dir),
            decision=input_artifact(Artifact, refused),
            tracking_uri=tracking_uri,
            model_name=MODEL_NAME,
            data_fingerprint="sha256:abc",
            train_data="train.csv",
        )
    assert MlflowClient(tracking_uri=tracking_uri).search_model_versions(f"name='{MODEL_NAME}'") == []


def test_the_data_contract_is_stored_with_digests_and_a_tampered_one_is_refused(
    dataset: DatasetFiles, model_dir: Path, approval: Path, tracking_uri: str, tmp_path: Path
) -> None:
    from kfp_cicd.errors import RegistryError
    from kfp_cicd.registry.aliases import CHAMPION
    from kfp_cicd.registry.contract import download_reference, file_digest, find_reference

    statistics, schema = tmp_path / "statistics", tmp_path / "schema"
    statistics.mkdir()
    schema.mkdir()
    (statistics / "train_stats.pb").write_bytes(b"\x0a\x03abc")
    (schema / "schema.pbtxt").write_text('feature { name: "amount" type: FLOAT }\n')
    (schema / "features.json").write_text('{"label": "y", "features": []}')
    (schema / "contract.json").write_text('{"contract_version": 1}')
    register_model = build_component(IMAGES.runtime).python_func
    version, _, _ = register_model(
        model=input_artifact(Model, model_dir),
        decision=input_artifact(Artifact, approval),
        evaluation_metrics=input_artifact(Metrics, model_dir, METRICS),
        tracking_uri=tracking_uri,
        model_name=MODEL_NAME,
        data_fingerprint="sha256:abc",
        train_data=str(dataset.train),
        statistics=input_artifact(Artifact, statistics),
        schema=input_artifact(Artifact, schema),
    )
    client = MlflowClient(tracking_uri=tracking_uri)
    tags = client.get_model_version(MODEL_NAME, version).tags
    assert tags["schema_digest"] == file_digest(schema / "schema.pbtxt")
    assert tags["training_statistics_digest"] == file_digest(statistics / "train_stats.pb")
    assert tags["schema_uri"].endswith("data_contract/schema.pbtxt")
    assert tags["data_contract_uri"].endswith("data_contract/contract.json")

    client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
    reference = find_reference(tracking_uri, MODEL_NAME)
    local = download_reference(reference, tracking_uri, tmp_path / "download")
    assert local.schema_path.read_text() == (schema / "schema.pbtxt").read_text()
    # The stored schema changed after registration: the digest tag no longer matches, refused.
    client.set_model_version_tag(MODEL_NAME, version, "schema_digest", "sha256:" + "0" * 64)
    with pytest.raises(RegistryError, match="not the file that was registered"):
        download_reference(find_reference(tracking_uri, MODEL_NAME), tracking_uri, tmp_path / "again")
