"""Every command that reads the local store takes ``--home`` and reads the store ``run`` wrote there."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfp_cicd.cli import main
from kfp_cicd.registry.aliases import CHAMPION, PREVIOUS, promote
from kfp_cicd.registry.client import version_for_alias
from kfp_cicd.registry.registration import register_model_version


@pytest.fixture
def home_with_two_versions(tmp_path: Path, untrained_model_dir: Path, monkeypatch) -> Path:
    """A home whose store (``<home>/mlflow.db``) holds versions 1 and 2, version 2 champion."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("KFP_CICD_HOME", str(tmp_path / "elsewhere"))  # not the home under test
    home = tmp_path / "home"
    home.mkdir()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    for _ in range(2):
        registered = register_model_version(untrained_model_dir, tracking_uri=uri, model_name="churn")
        promote(uri, "churn", registered.version)
    return home


def test_registry_show_and_rollback_read_the_store_in_home(
    home_with_two_versions: Path, capsys: pytest.CaptureFixture
) -> None:
    home = str(home_with_two_versions)
    assert main(["registry", "show", "--model", "churn", "--home", home]) == 0
    out = capsys.readouterr().out
    assert f"churn at sqlite:///{home}/mlflow.db: 2 version(s)" in out
    assert main(["rollback", "--model", "churn", "--home", home]) == 0
    uri = f"sqlite:///{home}/mlflow.db"
    assert version_for_alias(uri, "churn", CHAMPION) == "1"
    assert version_for_alias(uri, "churn", PREVIOUS) == "2"
    assert not (Path(home).parent / "elsewhere").exists(), "the default home was not touched"


def test_an_explicit_tracking_uri_wins_over_home(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    other = tmp_path / "other.db"
    argv = ["registry", "show", "--model", "churn", "--home", str(tmp_path / "home")]
    assert main([*argv, "--tracking-uri", f"sqlite:///{other}"]) == 2
    assert f"no registered model named 'churn' at sqlite:///{other}" in capsys.readouterr().err
