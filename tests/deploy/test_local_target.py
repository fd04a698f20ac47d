"""The local deployment target against a real MLflow registry (SQLite in a temporary directory).

A good version serves, passes the V1/V2 smoke test and becomes ``champion``; a broken one, or one
that fails its smoke test, raises DeploymentError and leaves the aliases exactly as they were.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import requests

from kfp_cicd.components.deploy import local_target
from kfp_cicd.components.deploy.deployment import ClusterOptions, run_deploy_task
from kfp_cicd.components.deploy.kube_api import ClusterConnection, ClusterUnreachable
from kfp_cicd.components.deploy.local_target import deploy_locally
from kfp_cicd.data.tables import write_table
from kfp_cicd.errors import DeploymentError
from kfp_cicd.model.integrity import write_checksums
from kfp_cicd.registry.aliases import CHAMPION, PREVIOUS, set_alias
from kfp_cicd.registry.client import storage_location, version_for_alias
from kfp_cicd.registry.registration import register_model_version

MODEL = "fraud-detector"


@pytest.fixture(scope="module")
def model_dir(untrained_model_dir: Path) -> Path:
    return untrained_model_dir


@pytest.fixture(scope="module")
def holdout_rows() -> list[dict[str, Any]]:
    """Holdout-like rows, label included (the local target drops it using the model's config)."""
    from kfp_cicd.data.synthetic import generate_transactions

    return generate_transactions(5, seed=12).to_dict(orient="records")


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mlflow.db"


def _broken_copy(model_dir: Path, destination: Path) -> Path:
    broken = shutil.copytree(model_dir, destination)
    (broken / "artifacts" / "network.pt2").write_bytes(b"this is not a torch.export archive")
    write_checksums(broken)  # consistently broken: it passes the integrity check, then fails to load
    return broken


def test_a_good_version_serves_and_becomes_champion(
    tracking_uri: str, model_dir: Path, tmp_path: Path, holdout_rows: list[dict[str, Any]]
) -> None:
    earlier = register_model_version(model_dir, tracking_uri=tracking_uri, model_name=MODEL).version
    set_alias(tracking_uri, MODEL, CHAMPION, earlier)
    version = register_model_version(model_dir, tracking_uri=tracking_uri, model_name=MODEL).version

    deployment = deploy_locally(
        tracking_uri=tracking_uri,
        model_name=MODEL,
        version=version,
        smoke_rows=holdout_rows,
        work_dir=tmp_path / "work",
    )

    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == version
    assert version_for_alias(tracking_uri, MODEL, PREVIOUS) == earlier  # kept for rollback
    assert deployment.version == version and deployment.promoted_alias == CHAMPION
    assert deployment.served_name == MODEL
    assert len(deployment.smoke.v1_predictions) == len(holdout_rows)
    assert deployment.smoke.v1_predictions == deployment.smoke.v2_predictions
    assert all(0.0 <= p.probability <= 1.0 for p in deployment.smoke.v1_predictions)
    assert (deployment.model_dir / "MLmodel").is_file()
    assert "passed its smoke test" in deployment.summary()
    with pytest.raises(requests.ConnectionError):  # the server was stopped
        requests.get(f"{deployment.endpoint}/v2/health/ready", timeout=2)


def test_a_broken_version_is_refused_and_champion_stays(
    tracking_uri: str, model_dir: Path, tmp_path: Path, holdout_rows: list[dict[str, Any]]
) -> None:
    good = register_model_version(model_dir, tracking_uri=tracking_uri, model_name=MODEL).version
    set_alias(tracking_uri, MODEL, CHAMPION, good)
    broken = register_model_version(
        _broken_copy(model_dir, tmp_path / "broken"), tracking_uri=tracking_uri, model_name=MODEL
    ).version

    with pytest.raises(DeploymentError, match="does not load"):
        deploy_locally(
            tracking_uri=tracking_uri,
            model_name=MODEL,
            version=broken,
            smoke_rows=holdout_rows,
            work_dir=tmp_path / "work",
        )

    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == good


def test_a_server_that_dies_at_startup_reports_its_log(
    tracking_uri: str,
    model_dir: Path,
    tmp_path: Path,
    holdout_rows: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Let a directory without MLmodel past the in-process check: the real server exits at once."""
    version = register_model_version(model_dir, tracking_uri=tracking_uri, model_name=MODEL).version
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    monkeypatch.setattr(local_target, "download_version", lambda *args: empty)
    monkeypatch.setattr(local_target, "check_model_loads", lambda _: {"label": "is_fraud"})
    monkeypatch.setattr(local_target, "verify_model", lambda *args: "sha256:skipped")

    with pytest.raises(DeploymentError) as failure:
        deploy_locally(
            tracking_uri=tracking_uri,
            model_name=MODEL,
            version=version,
            smoke_rows=holdout_rows,
            work_dir=tmp_path / "work",
            startup_timeout=60,
        )

    message = str(failure.value)
    assert "exited with status 2" in message and "predictor.log" in message
    assert "not an MLflow model directory" in message  # the server's own words, from its log
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) is None


def test_a_swapped_artifact_is_refused_and_champion_stays(
    tracking_uri: str, model_dir: Path, tmp_path: Path, holdout_rows: list[dict[str, Any]]
) -> None:
    """The stored files no longer match the digest the registry recorded: nothing is served."""
    good = register_model_version(model_dir, tracking_uri=tracking_uri, model_name=MODEL).version
    set_alias(tracking_uri, MODEL, CHAMPION, good)
    swapped = register_model_version(model_dir, tracking_uri=tracking_uri, model_name=MODEL).version
    stored = Path(storage_location(tracking_uri, MODEL, swapped).removeprefix("file://"))
    config = stored / "artifacts" / "config.json"
    config.write_text(config.read_text().replace('"decision_threshold": 0.5', '"decision_threshold": 0.01'))
    write_checksums(stored)  # even re-checksummed, the digest differs from the registered one

    with pytest.raises(DeploymentError, match=r"failed its integrity check.*was swapped"):
        deploy_locally(
            tracking_uri=tracking_uri,
            model_name=MODEL,
            version=swapped,
            smoke_rows=holdout_rows,
            work_dir=tmp_path / "work",
        )
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == good


def test_kubernetes_target_writes_the_manifest_then_names_an_unreachable_cluster(
    tracking_uri: str, model_dir: Path, tmp_path: Path, holdout_rows: list[dict[str, Any]]
) -> None:
    import pandas as pd
    import yaml

    version = register_model_version(model_dir, tracking_uri=tracking_uri, model_name=MODEL).version
    eval_data = tmp_path / "holdout.csv"
    write_table(pd.DataFrame(holdout_rows), str(eval_data))
    manifest_path = tmp_path / "out" / "isvc.yaml"
    host = f"http://127.0.0.1:{local_target.free_port()}"

    with pytest.raises(ClusterUnreachable, match="is unreachable"):
        run_deploy_task(
            tracking_uri=tracking_uri,
            model_name=MODEL,
            version=version,
            target="kubernetes",
            namespace="kfp-cicd",
            runtime_image="ghcr.io/kfp-cicd/kfp-cicd-runtime:9.9.9",
            eval_data=str(eval_data),
            inference_service_path=str(manifest_path),
            deployment_mode="RawDeployment",
            cluster=ClusterOptions(connection=ClusterConnection(host=host)),
        )

    manifest = yaml.safe_load(manifest_path.read_text())
    model = manifest["spec"]["predictor"]["model"]
    assert model["storageUri"] == storage_location(tracking_uri, MODEL, version)
    assert model["storageUri"].startswith("file://")
    assert model["image"] == "ghcr.io/kfp-cicd/kfp-cicd-runtime:9.9.9"
    env = {entry["name"]: entry.get("value") for entry in model["env"]}
    assert env["MODEL_DIGEST"].startswith("sha256:")
    assert manifest["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) is None


def test_unknown_target_is_refused_before_anything_happens(tracking_uri: str, tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="unknown deploy target"):
        run_deploy_task(
            tracking_uri=tracking_uri,
            model_name=MODEL,
            version="1",
            target="cloud",
            namespace="kfp-cicd",
            runtime_image="",
            eval_data="",
            inference_service_path=str(tmp_path / "isvc.yaml"),
            deployment_mode="Serverless",
        )
    assert not (tmp_path / "isvc.yaml").exists()
