"""The Vertex serving container's entry point, for real: download from Cloud Storage, then serve.

``python -m kfp_cicd.gcp.vertex_serving`` runs as Vertex AI starts the predictor image
(``AIP_STORAGE_URI``, ``AIP_HTTP_PORT``, the upload's ``MODEL_*`` environment) with the REAL
google-auth client against the Cloud Storage FAKE (``FakeGoogleCloud``: the JSON API's list and
``alt=media``), and must answer on the health and predict routes the Vertex upload declares.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fake_google_cloud import FakeGoogleCloud

from kfp_cicd.components.deploy.local_target import free_port
from kfp_cicd.components.deploy.vertex_target import health_route, predict_route
from kfp_cicd.errors import DeploymentError
from kfp_cicd.gcp.gcs import STORAGE_API, download_prefix
from kfp_cicd.model.integrity import verify_model

MODEL = "fraud-detector"
PREFIX = "mlflow/7/0a1b2c/artifacts/model"
URI = f"gs://models-bucket/{PREFIX}"


@pytest.fixture
def google(
    untrained_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeGoogleCloud]:
    with FakeGoogleCloud() as fake:
        for path in untrained_model_dir.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                name = f"{PREFIX}/{path.relative_to(untrained_model_dir).as_posix()}"
                fake.objects[("models-bucket", name)] = path.read_bytes()
        fake.objects[("models-bucket", "mlflow/7/other/artifacts/model/MLmodel")] = b"not this one"
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(fake.service_account_file(tmp_path)))
        monkeypatch.setenv(STORAGE_API.env_var, fake.url)
        yield fake


def test_the_prefix_is_downloaded_exactly_and_verifies(
    google: FakeGoogleCloud, untrained_model_dir: Path, tmp_path: Path
) -> None:
    written = download_prefix(URI, tmp_path / "model")

    assert verify_model(tmp_path / "model") == verify_model(untrained_model_dir)
    assert len(written) == len([k for k in google.objects if k[1].startswith(PREFIX + "/")])
    assert all(r["token"].startswith("ya29.fake-") for r in google.api_requests("/storage/"))


def test_no_read_access_names_the_role(google: FakeGoogleCloud, tmp_path: Path) -> None:
    google.denied = {"storage.objects.list"}
    with pytest.raises(DeploymentError, match=r"roles/storage\.objectViewer"):
        download_prefix(URI, tmp_path / "model")


def test_an_empty_prefix_is_refused(google: FakeGoogleCloud, tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="no files under"):
        download_prefix("gs://models-bucket/mlflow/8", tmp_path / "model")


def test_the_container_serves_on_the_routes_the_upload_declares(
    google: FakeGoogleCloud, untrained_model_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    environment = {
        **os.environ,
        "AIP_STORAGE_URI": URI,
        "AIP_HTTP_PORT": str(port),
        "MODEL_NAME": MODEL,
        "MODEL_DIGEST": verify_model(untrained_model_dir),
        "MODEL_VERSION": "7",
    }
    log = (tmp_path / "container.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "kfp_cicd.gcp.vertex_serving"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(base + health_route(MODEL), timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        assert process.poll() is None, (tmp_path / "container.log").read_text()[-3000:]
        from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions

        rows = generate_transactions(2, seed=3).drop(columns=[LABEL_COLUMN]).to_dict(orient="records")
        answer = requests.post(base + predict_route(MODEL), json={"instances": rows}, timeout=30)
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert len(predictions) == 2 and all(0.0 <= p["probability"] <= 1.0 for p in predictions)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_a_tampered_download_is_refused_by_the_digest_check(
    google: FakeGoogleCloud, untrained_model_dir: Path, tmp_path: Path
) -> None:
    google.objects[("models-bucket", f"{PREFIX}/MLmodel")] += b"\n# changed\n"
    result = subprocess.run(
        [sys.executable, "-m", "kfp_cicd.gcp.vertex_serving"],
        env={
            **os.environ,
            "AIP_STORAGE_URI": URI,
            "AIP_HTTP_PORT": str(free_port()),
            "MODEL_NAME": MODEL,
            "MODEL_DIGEST": verify_model(untrained_model_dir),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "MLmodel" in result.stderr + result.stdout
