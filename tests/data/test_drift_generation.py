"""Controlled drift in the synthetic data: later production days shift, the default never changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from kfp_cicd.cli import main
from kfp_cicd.data.synthetic import LABEL_COLUMN, DriftSpec, day_drift, generate_days, generate_transactions
from kfp_cicd.data.tables import read_table
from kfp_cicd.errors import DataError

# sha256 of generate_transactions(5000, seed=0).to_csv(index=False), taken before drift existed.
PINNED_DEFAULT_SHA256 = "e52c6d9f7c237d13300072794681e8fa9d784b970f4302cb853aa3211947c78c"
ROWS = 20_000


def _sha(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def test_default_output_is_byte_identical_to_before_drift_existed() -> None:
    assert _sha(generate_transactions(5000, seed=0)) == PINNED_DEFAULT_SHA256


@pytest.mark.parametrize("spec", [DriftSpec(), DriftSpec.uniform(0.3, day=0), DriftSpec(day=5)])
def test_a_spec_that_shifts_nothing_gives_the_undrifted_frame(spec: DriftSpec) -> None:
    assert not spec.is_active
    assert _sha(generate_transactions(5000, seed=0, drift=spec)) == PINNED_DEFAULT_SHA256


@pytest.fixture(scope="module")
def baseline() -> pd.DataFrame:
    return generate_transactions(ROWS, seed=1)


@pytest.fixture(scope="module")
def drifted() -> pd.DataFrame:
    return generate_transactions(ROWS, seed=2, drift=DriftSpec.uniform(0.25, day=6))


def test_drift_raises_amounts_online_share_and_fraud_rate(
    baseline: pd.DataFrame, drifted: pd.DataFrame
) -> None:
    assert drifted["amount"].median() / baseline["amount"].median() == pytest.approx(2.5, rel=0.1)
    assert drifted["avg_amount_30d"].median() == pytest.approx(baseline["avg_amount_30d"].median(), rel=0.05)
    online = (drifted["channel"] == "online").mean(), (baseline["channel"] == "online").mean()
    assert online[1] == pytest.approx(0.36, abs=0.02)
    assert online[0] == pytest.approx(0.36 * 2.5 / (0.36 * 2.5 + 0.64), abs=0.02)
    assert drifted[LABEL_COLUMN].mean() > 1.8 * baseline[LABEL_COLUMN].mean()


def test_each_part_of_the_spec_shifts_only_its_own_aspect(baseline: pd.DataFrame) -> None:
    amounts_only = generate_transactions(ROWS, seed=1, drift=DriftSpec(amount_shift=1.0, day=1))
    assert (amounts_only["amount"] >= baseline["amount"]).all()
    assert (amounts_only["channel"] == baseline["channel"]).all()
    fraud_only = generate_transactions(ROWS, seed=1, drift=DriftSpec(fraud_rate_shift=1.0, day=1))
    assert fraud_only.drop(columns=LABEL_COLUMN).equals(baseline.drop(columns=LABEL_COLUMN))
    assert fraud_only[LABEL_COLUMN].sum() > 1.5 * baseline[LABEL_COLUMN].sum()


def test_fraud_rate_stays_below_one_half() -> None:
    assert DriftSpec.uniform(10.0, day=100).fraud_rate(0.02) < 0.5


def test_production_days_start_undrifted_and_move_further_each_day(tmp_path: Path) -> None:
    paths = generate_days(tmp_path, days=4, rows_per_day=3000, drift=0.25, seed=9)
    assert [p.name for p in paths] == ["day1.csv", "day2.csv", "day3.csv", "day4.csv"]
    assert day_drift(0.25, 1).day == 0 and day_drift(0.25, 4).day == 3
    frames = [read_table(str(p)) for p in paths]
    assert frames[0].equals(generate_transactions(3000, seed=10)), "day 1 is the training distribution"
    medians = [f["amount"].median() for f in frames]
    assert medians == sorted(medians) and medians[3] > 1.5 * medians[0]
    assert all(LABEL_COLUMN in f.columns for f in frames), "days carry delayed labels for retraining"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"amount_shift": -0.1}, "amount_shift"),
        ({"online_shift": float("nan")}, "online_shift"),
        ({"day": -1}, "day"),
        ({"day": 1.5}, "day"),
    ],
)
def test_bad_drift_specs_are_refused_by_name(kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        DriftSpec(**kwargs)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="DriftSpec"):
        generate_transactions(10, drift=0.1)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="days"):
        generate_days(tmp_path, days=0, rows_per_day=10)
    with pytest.raises(DataError, match="drift"):
        generate_days(tmp_path, days=1, rows_per_day=10, drift=-1.0)
    with pytest.raises(DataError, match="numbered from 1"):
        day_drift(0.1, 0)


def test_cli_writes_training_data_and_production_days(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(
        [
            "data",
            "generate",
            "--rows",
            "2000",
            "--out-dir",
            str(tmp_path),
            "--days",
            "3",
            "--drift",
            "0.2",
            "--day-rows",
            "500",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "day1.csv",
        "day2.csv",
        "day3.csv",
        "holdout.csv",
        "train.csv",
    ]
    assert len(read_table(str(tmp_path / "day3.csv"))) == 500
    assert "day3.csv" in capsys.readouterr().out


def test_cli_refuses_drift_without_days(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "generate", "--rows", "100", "--out-dir", str(tmp_path), "--drift", "0.1"]) == 2
    assert "--days" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
