"""What a run accepts against its reference, and how a first release is told apart (no TFDV)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kfp_cicd.components.validate_data.contract import (
    ACCEPTED_KINDS,
    acceptance_for,
    accepted_record,
    champion_of,
    choose_reference,
    contract_summary_lines,
)
from kfp_cicd.errors import DataError


def test_nothing_is_accepted_by_default() -> None:
    acceptance = acceptance_for("", "")
    assert acceptance.changes == () and acceptance.kinds == () and acceptance.reason == ""


def test_a_monitoring_retrain_accepts_drift_and_wider_ranges_and_says_why() -> None:
    acceptance = acceptance_for("", "drift in amount (0.31 > 0.15)")
    assert acceptance.changes == ("drift", "ranges")
    assert set(acceptance.kinds) == set(ACCEPTED_KINDS["drift"]) | set(ACCEPTED_KINDS["ranges"])
    assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" not in acceptance.kinds  # a broken feed still stops
    assert "retraining started by monitoring: drift in amount" in acceptance.reason


def test_schema_and_drift_can_be_accepted_together() -> None:
    acceptance = acceptance_for("Schema, drift", "")
    assert acceptance.changes == ("drift", "schema")
    assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in acceptance.kinds


@pytest.mark.parametrize("value", ["everything", "drift,types", "anomalies"])
def test_anything_else_is_refused_with_what_may_be_accepted(value: str) -> None:
    with pytest.raises(DataError, match="use drift, ranges and/or schema"):
        acceptance_for(value, "")


def test_the_record_keeps_only_the_anomalies_the_acceptance_let_through(tmp_path: Path) -> None:
    anomalies = tmp_path / "anomalies.json"
    anomalies.write_text(
        json.dumps(
            [
                {
                    "dataset": "train",
                    "feature": "amount",
                    "kind": "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
                },
                {"dataset": "train", "feature": "country", "kind": "ENUM_TYPE_UNEXPECTED_STRING_VALUES"},
            ]
        )
    )
    record = accepted_record(acceptance_for("drift", ""), anomalies, "run-7")
    assert record["accepted_by"] == "run-7" and record["changes"] == ["drift"]
    assert [a["feature"] for a in record["anomalies"]] == ["amount"]
    assert accepted_record(acceptance_for("", ""), anomalies) is None
    lines = "\n".join(contract_summary_lines(record))
    assert "Accepted in this run" in lines and "`amount`" in lines
    assert contract_summary_lines(None) == []


def test_without_a_champion_the_run_is_a_first_release(tmp_path: Path) -> None:
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    choice = choose_reference(
        champion=champion_of(tracking_uri, "nothing-registered"),
        tracking_uri=tracking_uri,
        schema_path="",
        baseline_statistics="",
        work_dir=tmp_path,
    )
    assert (choice.kind, choice.schema_path, choice.baseline_statistics) == ("first_release", "", "")
    assert choice.name == "" and choice.details["champion"] is None


def test_a_schema_file_wins_over_the_champion(tmp_path: Path) -> None:
    schema = tmp_path / "schema.pbtxt"
    schema.write_text("")
    choice = choose_reference(
        champion=None, tracking_uri="", schema_path=str(schema), baseline_statistics="", work_dir=tmp_path
    )
    assert choice.kind == "schema_file" and choice.schema_path == str(schema)
