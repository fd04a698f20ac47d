"""Model checksums: corrupted, truncated, missing or swapped files are refused; config updates re-seal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from kfp_cicd.data.synthetic import generate_transactions
from kfp_cicd.model.integrity import CHECKSUM_FILE, ModelIntegrityError, verify_model
from kfp_cicd.model.packaging import update_model_config


@pytest.fixture
def model_copy(untrained_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(untrained_model_dir, tmp_path / "model"))


def test_a_saved_model_verifies_and_its_digest_is_stable(model_copy: Path, untrained_model_dir: Path) -> None:
    digest = verify_model(model_copy)
    assert digest.startswith("sha256:") and digest == verify_model(untrained_model_dir)
    recorded = json.loads((model_copy / CHECKSUM_FILE).read_text())["files"]
    assert {"MLmodel", "artifacts/network.pt2", "artifacts/preprocessor.skops"} <= set(recorded)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: (root / "artifacts" / "network.pt2").write_bytes(b"corrupted"), "changed"),
        (lambda root: (root / "artifacts" / "preprocessor.skops").unlink(), "missing"),
        (lambda root: (root / "artifacts" / "config.json").write_text("{}"), "artifacts/config.json"),
        (lambda root: (root / CHECKSUM_FILE).unlink(), "no checksums.json"),
    ],
)
def test_damaged_models_are_refused_naming_the_file(model_copy: Path, damage, message: str) -> None:
    damage(model_copy)
    with pytest.raises(ModelIntegrityError, match=message):
        verify_model(model_copy)


def test_an_added_file_cannot_change_what_loads_and_is_allowed(model_copy: Path) -> None:
    before = verify_model(model_copy)
    (model_copy / "training_history.json").write_text("[]")
    assert verify_model(model_copy) == before


def test_a_swapped_model_is_refused_by_the_registered_digest(model_copy: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="swapped"):
        verify_model(model_copy, expected_digest="sha256:" + "0" * 64)


def test_config_update_changes_predictions_and_reseals(model_copy: Path) -> None:
    rows = generate_transactions(200, seed=5).drop(columns=["is_fraud"])
    before = verify_model(model_copy)
    update_model_config(model_copy, decision_threshold=0.000001)
    after = verify_model(model_copy)
    assert after != before
    predictions = mlflow.pyfunc.load_model(str(model_copy)).predict(pd.DataFrame(rows))
    assert predictions["prediction"].eq(1).all(), "every probability is above the new threshold"
    with pytest.raises(KeyError, match="no fields"):
        update_model_config(model_copy, not_a_field=1)


def test_config_update_refuses_a_corrupted_model(model_copy: Path) -> None:
    (model_copy / "artifacts" / "network.pt2").write_bytes(b"corrupted")
    with pytest.raises(ModelIntegrityError):
        update_model_config(model_copy, decision_threshold=0.3)
    assert json.loads((model_copy / "artifacts" / "config.json").read_text())["decision_threshold"] == 0.5
