"""The data contract, as a user meets it: a first release stores its schema and statistics, and the
next runs are validated against the champion's, through the CLI on a real public data set.

ISLP's ``Default`` (10,000 card holders; label ``default`` Yes/No; ``student`` Yes/No; ``balance`` and
``income`` numeric). The corrupted feeds are the kinds real feeds go wrong in; each must stop at
validation with the column named, and leave the registry as it was. Real TFDV, torchrun, MLflow
(SQLite) and kfp.local; nothing is mocked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from public_datasets import get

from kfp_cicd.registry.aliases import CHAMPION
from kfp_cicd.registry.client import list_versions, version_for_alias, version_tags
from kfp_cicd.registry.contract import download_reference, file_digest, find_reference

pytestmark = pytest.mark.slow
CLI = Path(sys.executable).with_name("kfp-cicd")
DATASET = get("credit_default")
MODEL = "credit-default-contract"


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLI), *argv], cwd=cwd, capture_output=True, text=True, timeout=1200, check=False
    )


def _run(workspace: Path, train: Path, *params: str) -> subprocess.CompletedProcess:
    arguments = ["run", "--train-data", str(train), "--eval-data", str(workspace / "holdout.csv")]
    arguments += ["--home", str(workspace / "home")]
    for param in (f"label_column={DATASET.label}", f"model_name={MODEL}", *params):
        arguments += ["--param", param]
    return _cli(*arguments, cwd=workspace)


def _run_dir(stdout: str) -> Path:
    line = next(line for line in stdout.splitlines() if "run directory:" in line)
    return Path(line.split("run directory:", 1)[1].strip())


def _task_output(run_dir: Path, task: str, name: str) -> Path:
    (path,) = run_dir.glob(f"pipeline_root/**/{task}/{name}")
    return path


def _tracking_uri(workspace: Path) -> str:
    return f"sqlite:///{workspace / 'home' / 'mlflow.db'}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not DATASET.installed():
        pytest.fail(f"{DATASET.package} is not installed: run make install (requirements/datasets.txt)")
    directory = tmp_path_factory.mktemp("data-contract")
    frame = DATASET.load().sample(frac=1.0, random_state=3).reset_index(drop=True)
    # Three disjoint parts: the first release's training data, a later feed, the holdout.
    frame.iloc[:4000].to_csv(directory / "train.csv", index=False)
    frame.iloc[4000:8000].to_csv(directory / "feed.csv", index=False)
    frame.iloc[8000:].to_csv(directory / "holdout.csv", index=False)
    return directory


@pytest.fixture(scope="module")
def first_release(workspace: Path) -> subprocess.CompletedProcess:
    return _run(workspace, workspace / "train.csv")


def test_the_first_release_infers_and_stores_its_contract(first_release, workspace: Path) -> None:
    assert first_release.returncode == 0, first_release.stdout[-3000:] + first_release.stderr[-3000:]
    run_dir = _run_dir(first_release.stdout)
    summary = _task_output(run_dir, "validate-data", "summary").read_text()
    assert "First release" in summary, summary
    tracking_uri = _tracking_uri(workspace)
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == "1"
    tags = version_tags(tracking_uri, MODEL, "1")
    for tag in ("schema_uri", "schema_digest", "training_statistics_uri", "training_statistics_digest"):
        assert tags.get(tag), (tag, tags)
    assert tags.get("data_contract_uri"), tags
    local = download_reference(find_reference(tracking_uri, MODEL), tracking_uri, workspace / "reference")
    assert file_digest(local.schema_path) == tags["schema_digest"]
    schema = local.schema_path.read_text()
    # Ranges and domains are stored: an inferred schema without them would catch nothing.
    assert "float_domain" in schema or "int_domain" in schema, schema
    assert '"Yes"' in schema and '"No"' in schema, schema


def _spelling(frame: pd.DataFrame) -> pd.DataFrame:
    third = frame.index[: len(frame) // 3]
    frame.loc[third, "student"] = frame.loc[third, "student"].map({"Yes": "YES", "No": "no"})
    return frame


def _new_category(frame: pd.DataFrame) -> pd.DataFrame:
    """A category the contract does not know, in 6 % of the rows: a schema change, hardly drift."""
    some = frame.index[:: len(frame) // 240]
    frame.loc[some, "student"] = "Part-time"
    return frame


def _thousandfold(frame: pd.DataFrame) -> pd.DataFrame:
    fifth = frame.index[: len(frame) // 5]
    frame["income"] = frame["income"].astype(float)
    frame.loc[fifth, "income"] = frame["income"].max() * 1000.0 + frame.loc[fifth, "income"]
    return frame


def _missing(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["income"])


# Through the whole pipeline: the two kinds that used to pass validation and train a candidate, and
# a missing column. Every kind (these, thousands separators, a null column, a new column, drift) is
# also checked against a champion's reference at the validation level, in one TFDV process:
# tests/validate_data/test_reference_contract.py.
CORRUPTIONS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "category spelling changed in a third of the rows": (_spelling, "student"),
    "a fifth of the values 1000x above anything seen": (_thousandfold, "income"),
    "a column is missing": (_missing, "income"),
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_corrupted_feed_is_stopped_with_the_column_named_and_nothing_registered(
    kind: str, first_release, workspace: Path
) -> None:
    assert first_release.returncode == 0
    corrupt, column = CORRUPTIONS[kind]
    path = workspace / f"corrupt-{column}-{abs(hash(kind)) % 10_000}.csv"
    corrupt(pd.read_csv(workspace / "feed.csv")).to_csv(path, index=False)
    completed = _run(workspace, path)
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output[-3000:]
    assert "validate" in output and column in output, output[-3000:]
    tracking_uri = _tracking_uri(workspace)
    assert [v.version for v in list_versions(tracking_uri, MODEL)] == ["1"], kind
    assert version_for_alias(tracking_uri, MODEL, CHAMPION) == "1"


def test_a_clean_new_feed_passes_against_the_champion(first_release, workspace: Path) -> None:
    """No false alarm: another sample of the same population validates clean against the contract."""
    assert first_release.returncode == 0
    from kfp_cicd.components.validate_data.task import run_contract_validation

    out = workspace / "clean-feed"
    counts = run_contract_validation(
        train_data=str(workspace / "feed.csv"),
        eval_data=str(workspace / "holdout.csv"),
        label_column=DATASET.label,
        schema_path="",
        statistics_dir=str(out / "statistics"),
        schema_dir=str(out / "schema"),
        anomalies_file=str(out / "anomalies.json"),
        report_file=str(out / "report.html"),
        summary_file=str(out / "summary.md"),
        drift_report_file=str(out / "drift.md"),
        drift_html_file=str(out / "drift.html"),
        tracking_uri=_tracking_uri(workspace),
        model_name=MODEL,
    )
    assert counts[2] == 0
    contract = json.loads((out / "schema" / "contract.json").read_text())
    assert contract["reference"]["kind"] == "champion", contract
    assert contract["reference"]["champion"] == {"model_name": MODEL, "version": "1"}
    assert f"validated against champion {MODEL} version 1" in (out / "summary.md").read_text()
    assert "balance" in (out / "drift.md").read_text()  # drift measured against the champion's statistics


def test_schema_diff_and_accept_round_trip(first_release, workspace: Path) -> None:
    assert first_release.returncode == 0
    spelled = workspace / "new-category.csv"
    _new_category(pd.read_csv(workspace / "feed.csv")).to_csv(spelled, index=False)
    common = ["--data", str(spelled), "--label-column", DATASET.label, "--model-name", MODEL]
    common += ["--home", str(workspace / "home")]
    diff = _cli("schema", "diff", *common, cwd=workspace)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert "student" in diff.stdout and "new_category" in diff.stdout, diff.stdout
    accepted = workspace / "accepted.pbtxt"
    accept = _cli(
        "schema",
        "accept",
        *common,
        "--out",
        str(accepted),
        "--accepted-by",
        "reviewer@example.com",
        cwd=workspace,
    )
    assert accept.returncode == 0, accept.stdout + accept.stderr
    assert "reviewer@example.com" in accepted.read_text()
    completed = _run(workspace, spelled, f"schema_path={accepted}")
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    record = json.loads(
        _task_output(_run_dir(completed.stdout), "evaluate-model", "audit_record").read_text()
    )
    contract = record["data"]["schema"]["contract"]
    assert contract["reference"]["kind"] == "schema_file"
    assert "reviewer@example.com" in json.dumps(contract["schema_acceptance"]), contract


def test_drift_accepted_in_one_run_is_recorded_in_the_audit_record_and_card(
    first_release, workspace: Path
) -> None:
    assert first_release.returncode == 0
    feed = pd.read_csv(workspace / "feed.csv")
    drifted = feed[feed["balance"] > feed["balance"].median()]  # a feed of the high-balance half
    path = workspace / "drifted.csv"
    drifted.to_csv(path, index=False)
    refused = _run(workspace, path)
    assert refused.returncode != 0 and "balance" in refused.stdout + refused.stderr
    completed = _run(workspace, path, "accept_data_changes=drift")
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    run_dir = _run_dir(completed.stdout)
    record = json.loads(_task_output(run_dir, "evaluate-model", "audit_record").read_text())
    accepted = record["data"]["schema"]["contract"]["accepted"]
    assert accepted["changes"] == ["drift"], accepted
    assert any(a["feature"] == "balance" for a in accepted["anomalies"]), accepted
    card = _task_output(run_dir, "evaluate-model", "model_card").read_text()
    assert "Changes accepted in this run: drift" in card, card
