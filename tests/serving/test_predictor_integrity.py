"""The predictor verifies the model's checksums before loading: corrupted or swapped files never load."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kfp_cicd.errors import DeploymentError
from kfp_cicd.model.integrity import verify_model, write_checksums
from kfp_cicd.serving.predictor import PyfuncPredictor


@pytest.fixture
def model_copy(untrained_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(untrained_model_dir, tmp_path / "model"))


def test_an_intact_model_loads_with_and_without_the_registry_digest(model_copy: Path) -> None:
    digest = verify_model(model_copy)
    assert PyfuncPredictor("m", model_copy).load()
    assert PyfuncPredictor("m", model_copy, expected_digest=digest).load()


def test_a_corrupted_file_is_refused_before_loading(model_copy: Path) -> None:
    network = model_copy / "artifacts" / "network.pt2"
    network.write_bytes(network.read_bytes()[:-10])  # truncated in transit
    with pytest.raises(DeploymentError, match=r"refusing to serve .*changed \['artifacts/network.pt2'\]"):
        PyfuncPredictor("m", model_copy).load()


def test_a_swapped_artifact_is_refused_against_the_registry_digest(model_copy: Path) -> None:
    registered = verify_model(model_copy)
    config = model_copy / "artifacts" / "config.json"
    config.write_text(config.read_text().replace('"decision_threshold": 0.5', '"decision_threshold": 0.01'))
    write_checksums(model_copy)  # self-consistent, but not what was registered
    with pytest.raises(DeploymentError, match="was swapped"):
        PyfuncPredictor("m", model_copy, expected_digest=registered).load()


def test_the_server_refuses_a_digest_mismatch_from_the_environment(model_copy: Path) -> None:
    """The InferenceService passes the registry's digest as MODEL_DIGEST; a mismatch exits with 2."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kfp_cicd.serving",
            "--model-dir",
            str(model_copy),
            "--model-name",
            "m",
            "--no-grpc",
            "--http-port",
            "1",
        ],
        env={**os.environ, "MODEL_DIGEST": "sha256:" + "0" * 64},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 2
    assert "was swapped" in result.stderr
