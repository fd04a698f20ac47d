"""`kfp-cicd schema infer|show` through the real TFDV environment, and validation option parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfp_cicd.cli import main
from kfp_cicd.errors import DataError
from kfp_cicd.tfdv.options import (
    parse_beam_options,
    parse_drift_thresholds,
    parse_tolerated_kinds,
)


def test_schema_infer_then_show_round_trip(
    small_dataset, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "schemas" / "inferred.pbtxt"
    assert (
        main(
            [
                "schema",
                "infer",
                "--data",
                str(small_dataset.train),
                "--out",
                str(out),
                "--label-column",
                "is_fraud",
            ]
        )
        == 0
    )
    text = out.read_text()
    assert 'name: "amount"' in text and "default_environment" in text
    assert "TRAINING" in text and "SERVING" in text, "the label's environments must be set"
    assert "kfp-cicd:observed-range" in text and "float_domain" in text, "observed ranges are stored"
    capsys.readouterr()
    assert main(["schema", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "amount" in shown and "merchant_category" in shown
    label_row = next(line for line in shown.splitlines() if line.startswith("is_fraud"))
    assert "SERVING" in label_row, "the label is absent from serving data"


def test_schema_show_defaults_to_the_curated_schema(capsys: pytest.CaptureFixture) -> None:
    assert main(["schema", "show"]) == 0
    shown = capsys.readouterr().out
    amount = next(line for line in shown.splitlines() if line.startswith("amount "))
    assert "[0.01" in amount, "the curated schema keeps amounts positive"


def test_schema_commands_name_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["schema", "show", str(tmp_path / "nope.pbtxt")]) == 2
    assert "nope.pbtxt does not exist" in capsys.readouterr().err
    assert (
        main(
            [
                "schema",
                "infer",
                "--data",
                str(tmp_path / "none.csv"),
                "--out",
                str(tmp_path / "s.pbtxt"),
                "--label-column",
                "y",
            ]
        )
        == 2
    )
    assert "none.csv" in capsys.readouterr().err
    assert not (tmp_path / "s.pbtxt").exists()


def test_option_parsers_accept_the_documented_forms() -> None:
    assert parse_tolerated_kinds(" schema_new_column, ENUM_TYPE_UNEXPECTED_STRING_VALUES ") == (
        "SCHEMA_NEW_COLUMN",
        "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
    )
    assert parse_tolerated_kinds("") == ()
    assert parse_drift_thresholds('{"amount": 0.3, "country": 1}') == {"amount": 0.3, "country": 1.0}
    assert parse_drift_thresholds("  ") == {}
    assert parse_beam_options("--runner=DataflowRunner --project p") == (
        "--runner=DataflowRunner",
        "--project",
        "p",
    )


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_tolerated_kinds, "SCHEMA_NEW_COLUMN; DROP TABLE", "comma-separated list"),
        (parse_drift_thresholds, "{amount: 0.3}", "not valid JSON"),
        (parse_drift_thresholds, '{"amount": true}', "feature -> number"),
        (parse_drift_thresholds, "[0.3]", "feature -> number"),
        (parse_beam_options, "--runner='unterminated", "not a valid command line"),
        (parse_beam_options, "DataflowRunner --project=p", "follows no flag"),
    ],
)
def test_option_parsers_reject_bad_values_clearly(parse, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse(text)
