"""A real public data set, not generated, through the CLI as a new user runs it: ``--data`` and
``label_column``, nothing else. Then the monitoring loop on a shifted window of the same data.

ISLP's ``Default`` (10,000 card holders; ``default`` is ``Yes``/``No``, 3.3 % Yes; ``student`` is
``Yes``/``No`` too; ``balance`` and ``income`` numeric) ships inside the ISLP wheel
(requirements/datasets.txt). Real TFDV, torchrun, MLflow (SQLite) and the KServe predictor.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from public_datasets import get

from kfp_cicd.local_run import default_model_name
from kfp_cicd.registry.aliases import CHAMPION
from kfp_cicd.registry.client import version_for_alias

pytestmark = pytest.mark.slow
CLI = Path(sys.executable).with_name("kfp-cicd")
DATASET = get("credit_default")


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLI), *argv], cwd=cwd, capture_output=True, text=True, timeout=1200, check=False
    )


def _run_dir(stdout: str) -> Path:
    line = next(line for line in stdout.splitlines() if "run directory:" in line)
    return Path(line.split("run directory:", 1)[1].strip())


def _task_output(run_dir: Path, task: str, name: str) -> Path:
    (path,) = run_dir.glob(f"pipeline_root/*/{task}/{name}")
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not DATASET.installed():
        pytest.fail(f"{DATASET.package} is not installed: run make install (requirements/datasets.txt)")
    directory = tmp_path_factory.mktemp("real-data")
    DATASET.load().to_csv(directory / "Default.csv", index=False)
    return directory


@pytest.fixture(scope="module")
def first_run(workspace: Path) -> subprocess.CompletedProcess:
    return _cli(
        "run",
        "--data",
        str(workspace / "Default.csv"),
        "--home",
        str(workspace / "home"),
        "--param",
        f"label_column={DATASET.label}",
        cwd=workspace,
    )


def test_a_yes_no_label_runs_end_to_end_with_only_the_label_named(first_run, workspace: Path) -> None:
    assert first_run.returncode == 0, first_run.stdout[-3000:] + first_run.stderr[-3000:]
    out = first_run.stdout
    assert "SUCCEEDED" in out and "gate:       APPROVED" in out, out
    frame = pd.read_csv(workspace / "Default.csv")
    model = default_model_name(list(frame.columns), DATASET.label)
    assert f"models:/{model}/1" in out
    assert version_for_alias(f"sqlite:///{workspace / 'home' / 'mlflow.db'}", model, CHAMPION) == "1"


def test_the_positive_class_comes_from_the_data_and_is_recorded(first_run, workspace: Path) -> None:
    run_dir = _run_dir(first_run.stdout)
    features = json.loads(_task_output(run_dir, "validate-data", "schema/features.json").read_text())
    assert features["classes"]["positive"] == "Yes" and features["classes"]["negative"] == "No"
    config = json.loads(
        _task_output(run_dir, "evaluate-model", "operating_model/artifacts/config.json").read_text()
    )
    assert config["labels"]["positive"] == "Yes" and "calibration" in config
    card = _task_output(run_dir, "evaluate-model", "model_card").read_text()
    assert "'Yes'" in card and "fraud" not in card.lower()


def test_the_candidate_stands_beside_its_baseline(first_run) -> None:
    run_dir = _run_dir(first_run.stdout)
    decision = json.loads(_task_output(run_dir, "evaluate-model", "decision").read_text())
    kinds = {check["kind"] for check in decision["checks"]}
    assert "baseline" in kinds, decision
    assert all(c["passed"] for c in decision["checks"] if c["kind"] == "baseline"), decision


def test_monitor_retrains_on_a_shifted_window_of_the_same_data(first_run, workspace: Path) -> None:
    assert first_run.returncode == 0
    frame = pd.read_csv(workspace / "Default.csv")
    window = frame.sample(n=4_000, random_state=5).reset_index(drop=True)
    window["balance"] = window["balance"] * 1.6 + 300.0  # balances grew: a real-world kind of shift
    window["student"] = "Yes"  # and the window came from a student campaign
    window.to_csv(workspace / "window.csv", index=False)
    completed = _cli(
        "monitor",
        "--data",
        str(workspace / "window.csv"),
        "--home",
        str(workspace / "home"),
        "--param",
        f"label_column={DATASET.label}",
        cwd=workspace,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    out = completed.stdout
    assert "verdict:    RETRAIN" in out, out
    assert "retraining (nested training pipeline):" in out
    assert "evaluate-model" in out or "gate:" in out, out
