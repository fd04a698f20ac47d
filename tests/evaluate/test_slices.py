"""Slices: key parsing, banding, per-segment rates, gaps; the bias check on a model that fails a segment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kfp_cicd.components.evaluate.evaluation import EvaluationSettings, evaluate_release
from kfp_cicd.components.evaluate.gate import GatePolicy
from kfp_cicd.components.evaluate.slices import (
    SliceKey,
    auto_slice_keys,
    parse_slice_keys,
    segment_labels,
    slice_report,
    wants_auto_slices,
)
from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions
from kfp_cicd.errors import DataError


def test_slice_keys_parse_columns_quantiles_and_edges() -> None:
    keys = parse_slice_keys(" country, amount:q5 ,amount:1000|50|200,, channel")
    assert keys == [
        SliceKey("country"),
        SliceKey("amount", 5),
        SliceKey("amount", None, (50.0, 200.0, 1000.0)),
        SliceKey("channel"),
    ]
    assert keys[2].label == "amount:50|200|1000"
    assert parse_slice_keys("") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [("amount:q1", "at least 2"), ("amount:x|y", "not 'column'"), ("a:b:c", "not 'column'")],
)
def test_bad_slice_keys_are_refused(text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_slice_keys(text)


def test_segments_by_value_by_band_and_errors() -> None:
    frame = pd.DataFrame(
        {"country": ["US", "DE", None, "US"], "amount": [10.0, 60.0, 250.0, 5000.0], "hour": [1, 2, 3, 4]}
    )
    assert segment_labels(frame, SliceKey("country")).tolist() == ["US", "DE", "missing", "US"]
    bands = segment_labels(frame, SliceKey("amount", None, (50.0, 200.0, 1000.0))).tolist()
    assert bands == ["[-inf, 50.0)", "[50.0, 200.0)", "[200.0, 1000.0)", "[1000.0, inf)"]
    assert segment_labels(frame, SliceKey("hour")).tolist() == ["1", "2", "3", "4"], "few values: by value"
    with pytest.raises(DataError, match=r"'nope' is not a column.*country"):
        segment_labels(frame, SliceKey("nope"))
    with pytest.raises(DataError, match="not numeric"):
        segment_labels(frame, SliceKey("country", 4))


def test_many_valued_numeric_columns_are_banded_into_quartiles() -> None:
    frame = pd.DataFrame({"amount": np.arange(400, dtype=float)})
    assert segment_labels(frame, SliceKey("amount")).nunique() == 4


def test_rates_and_gaps_with_small_segments_left_out() -> None:
    frame = pd.DataFrame({"group": ["a"] * 10 + ["b"] * 10 + ["c"] * 3})
    labels = np.array([1] * 5 + [0] * 5 + [1] * 5 + [0] * 5 + [1, 0, 0])
    scores = np.array([0.9] * 5 + [0.1] * 4 + [0.9] + [0.9, 0.1, 0.1, 0.1, 0.1] + [0.1] * 5 + [0.1, 0.9, 0.9])
    report = slice_report(frame, labels, scores, 0.5, [SliceKey("group")], min_rows=5, min_positives=2)
    by_name = {s.segment: s for s in report.segments}
    assert by_name["a"].recall == 1.0 and by_name["a"].false_positive_rate == pytest.approx(0.2)
    assert by_name["b"].recall == pytest.approx(0.2) and by_name["b"].false_positive_rate == 0.0
    assert by_name["c"].recall is None, "3 rows < min_rows: not measured"
    recall_gap, fpr_gap = report.gaps
    assert (recall_gap.gap, recall_gap.highest, recall_gap.lowest) == (pytest.approx(0.8), "a", "b")
    assert fpr_gap.gap == pytest.approx(0.2) and fpr_gap.measured_segments == 2


def test_a_key_without_two_measurable_segments_is_reported_not_passed() -> None:
    frame = pd.DataFrame({"group": ["a"] * 10})
    labels = np.array([1, 0] * 5)
    report = slice_report(
        frame, labels, np.full(10, 0.7), 0.5, [SliceKey("group")], min_rows=1, min_positives=1
    )
    assert report.gaps[0].gap is None and "1 of 1 segments" in report.gaps[0].note


def test_auto_picks_the_low_cardinality_categorical_columns() -> None:
    rng = np.random.default_rng(0)
    rows = 500
    frame = pd.DataFrame(
        {
            "channel": rng.choice(["online", "pos", "atm"], rows),
            "region": rng.choice([f"r{i}" for i in range(20)], rows),  # 20 values: the upper bound
            "shop_id": [f"s{i % 60}" for i in range(rows)],  # 60 values: too many segments
            "constant": ["x"] * rows,  # one value: no slice
            "hour": rng.integers(0, 5, rows),  # few values, but not one of the model's categoricals
        }
    )
    frame.loc[:10, "channel"] = None  # missing values are a segment, not a distinct value
    auto = auto_slice_keys(frame, ["channel", "region", "shop_id", "constant", "absent"])
    assert auto.keys == (SliceKey("channel"), SliceKey("region"))
    assert auto.skipped == {
        "shop_id": "60 distinct values",
        "constant": "1 distinct values",
        "absent": "not in the evaluation data",
    }
    assert auto.sentence().startswith(
        "slice_keys 'auto': categorical columns with 2-20 distinct values in "
        "the evaluation data: channel, region; not sliced: shop_id (60"
    )


def test_auto_is_a_token_of_slice_keys() -> None:
    assert wants_auto_slices("auto") and wants_auto_slices(" amount , AUTO")
    assert not wants_auto_slices("") and not wants_auto_slices("automaker")
    assert parse_slice_keys("auto") == []
    assert parse_slice_keys("auto, amount:q5") == [SliceKey("amount", 5)]


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_transactions(12_000, seed=3), generate_transactions(6_000, seed=4)


def _slice_decision(model_dir: Path, holdout: pd.DataFrame, tmp_path: Path):
    settings = EvaluationSettings(
        policy=GatePolicy(max_recall_gap=0.35),
        slice_keys=(SliceKey("country"),),
        min_slice_rows=200,
        min_slice_positives=10,
        latency_repeats=1,
    )
    outcome, _ = evaluate_release(model_dir, holdout, settings, tmp_path)
    return outcome.decision


def test_bias_check_catches_a_model_that_fails_one_segment(quick_trainer, frames, tmp_path: Path) -> None:
    """Same data, same training; one model never saw a positive US label, so it misses US positives."""
    train, holdout = frames
    fair = quick_trainer(train, "fair")
    blind_train = train.copy()
    blind_train.loc[blind_train["country"] == "US", LABEL_COLUMN] = 0
    blind = quick_trainer(blind_train, "us-blind")

    fair_decision = _slice_decision(fair, holdout, tmp_path / "fair")
    (fair_check,) = [c for c in fair_decision.checks if c.metric == "recall gap across country"]
    assert fair_check.passed, fair_check.sentence()
    assert fair_decision.approved

    blind_decision = _slice_decision(blind, holdout, tmp_path / "blind")
    (blind_check,) = [c for c in blind_decision.checks if c.metric == "recall gap across country"]
    assert not blind_check.passed and not blind_decision.approved
    assert "lowest US 0.0" in blind_check.detail
    assert any(
        r.startswith("recall gap across country") and r.endswith("FAILED") for r in blind_decision.reasons
    )
