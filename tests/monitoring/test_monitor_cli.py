"""``kfp-cicd monitor`` refuses bad input before anything runs (the full run is in the e2e test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfp_cicd.cli import main
from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions


def test_a_window_without_labels_needs_training_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    window = tmp_path / "window.csv"
    generate_transactions(50, seed=1).drop(columns=[LABEL_COLUMN]).to_csv(window, index=False)
    assert (
        main(
            [
                "monitor",
                "--data",
                str(window),
                "--home",
                str(tmp_path / "home"),
                "--param",
                f"label_column={LABEL_COLUMN}",
            ]
        )
        == 2
    )
    assert "--train-data and --eval-data" in capsys.readouterr().err
    assert not (tmp_path / "home").exists(), "nothing may run or be written"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--param", "production_data=x.csv"], "production_data is set by the command's options"),
        (["--param", "epochs=many"], "epochs is an integer parameter"),
        ([], "--param label_column=NAME"),
        (["--train-data", "t.csv"], "both --train-data and --eval-data"),
    ],
)
def test_bad_arguments_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    assert main(["monitor", "--data", "day.csv", "--home", str(tmp_path / "home"), *args]) == 2
    assert message in capsys.readouterr().err
