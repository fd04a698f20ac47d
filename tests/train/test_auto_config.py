"""Automatic training settings: hyper-parameters and the validation plan from the data set's shape."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kfp_cicd.components.train.auto_config import plan_validation, resolve_hyperparameters
from kfp_cicd.components.train.training import TrainingConfig, plan_members
from kfp_cicd.data.splits import stratified_folds, stratified_holdout_mask, stratified_split
from kfp_cicd.errors import DataError

AUTO = TrainingConfig()


def is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def test_a_small_data_set_gets_small_batches_a_narrow_network_and_an_epoch_ceiling() -> None:
    # credit_default's shape: 6,400 training rows (one fold held out), 4 inputs, 3.3 % positive.
    resolved = resolve_hyperparameters(6_400, 4, 213, AUTO, world_size=2)
    assert resolved.batch_size == 64, "about 50 steps per epoch: 128 rows over both workers"
    assert resolved.learning_rate == pytest.approx(1e-3)
    assert resolved.epochs == 60, "a ceiling of ~3,000 steps; early stopping ends sooner"
    assert resolved.hidden_units == (32, 16)
    assert resolved.resolved


def test_a_large_wide_data_set_gets_large_batches_a_larger_step_and_a_wider_network() -> None:
    resolved = resolve_hyperparameters(10_000_000, 180, 200_000, AUTO, world_size=8)
    assert resolved.batch_size * 8 == 8192, "the largest batch, shared by 8 workers"
    assert resolved.learning_rate == pytest.approx(3e-3), "sqrt-scaled with the batch, capped"
    assert resolved.epochs == 10, "at least 10 epochs even when 3,000 steps take fewer"
    assert resolved.hidden_units == (256, 128)


def test_a_rare_positive_class_raises_the_batch_so_batches_hold_positives() -> None:
    rare = resolve_hyperparameters(20_000, 30, 20, AUTO)  # 0.1 % positive
    balanced = resolve_hyperparameters(20_000, 30, 10_000, AUTO)
    assert balanced.batch_size == 512
    assert rare.batch_size == 4096, "~4 positives per batch on average"
    assert all(is_power_of_two(c.batch_size) for c in (rare, balanced))


def test_tiny_data_sets_get_a_small_network_whatever_their_width() -> None:
    resolved = resolve_hyperparameters(60, 300, 20, AUTO)
    assert resolved.hidden_units == (32, 16)
    assert resolved.batch_size == 32 and resolved.epochs == 200


def test_explicit_values_are_kept() -> None:
    given = TrainingConfig(epochs=7, batch_size=100, learning_rate=0.05, hidden_units=(9,))
    assert resolve_hyperparameters(50_000, 40, 500, given, world_size=4) == given
    partly = resolve_hyperparameters(50_000, 40, 500, TrainingConfig(batch_size=100), world_size=4)
    assert partly.batch_size == 100
    assert partly.learning_rate == pytest.approx(1e-3), "400 rows per step over 4 workers: the base rate"
    bigger = resolve_hyperparameters(50_000, 40, 500, TrainingConfig(batch_size=512), world_size=4)
    assert bigger.learning_rate == pytest.approx(1e-3 * math.sqrt(2048 / 512))


@pytest.mark.parametrize("rows", [100, 1_000, 10_000, 100_000, 1_000_000])
def test_the_rule_grows_with_the_data_and_stays_within_its_bounds(rows: int) -> None:
    small = resolve_hyperparameters(rows, 20, rows // 10, AUTO)
    larger = resolve_hyperparameters(rows * 4, 20, rows * 4 // 10, AUTO)
    assert 32 <= small.batch_size <= larger.batch_size <= 8192
    assert 10 <= larger.epochs <= small.epochs <= 200
    assert 1e-3 <= small.learning_rate <= larger.learning_rate <= 3e-3


def test_small_data_is_cross_fitted_and_large_data_split_once() -> None:
    small = plan_validation(8_000, 266, AUTO)
    assert (small.folds, small.fraction) == (5, 0.2) and "cross-fitting" in small.rule
    large = plan_validation(100_000, 5_000, AUTO)
    assert (large.folds, large.fraction) == (1, 0.15) and "one stratified split" in large.rule
    rare = plan_validation(100_000, 300, AUTO)
    assert rare.folds == 5, "one 15 % split would hold only 45 rows of the rarer class"


def test_forced_plans_and_tiny_classes() -> None:
    assert plan_validation(100_000, 5_000, TrainingConfig(validation_folds=3)).folds == 3
    one = plan_validation(1_000, 100, TrainingConfig(validation_folds=1))
    assert one.folds == 1 and one.fraction == 0.3, "enlarged towards 30 rows of the rarer class"
    enough = plan_validation(1_000, 400, TrainingConfig(validation_folds=1))
    assert enough.fraction == 0.15
    assert plan_validation(1_000, 3, AUTO).folds == 3, "one fold per rare row at most"
    nothing = plan_validation(1_000, 1, AUTO)
    assert nothing.folds == 0 and "no validation rows" in nothing.rule


def test_members_cover_every_row_once_and_keep_the_class_mix() -> None:
    labels = (np.random.default_rng(0).random(1_000) < 0.07).astype(np.float32)
    plan, members = plan_members(labels, AUTO)
    assert plan.folds == 5 and len(members) == 5
    held_out = np.concatenate([m.validation for m in members])
    assert sorted(held_out.tolist()) == list(range(1_000)), "every row is validated exactly once"
    for member in members:
        assert not set(member.train) & set(member.validation)
        assert abs(labels[member.validation].mean() - labels.mean()) < 0.01
    many = (np.random.default_rng(1).random(10_000) < 0.07).astype(np.float32)
    plan, (single,) = plan_members(many, TrainingConfig(validation_folds=1, validation_fraction=0.2))
    assert plan.folds == 1 and len(single.validation) == pytest.approx(2_000, abs=1)
    assert len(single.train) + len(single.validation) == 10_000
    _, (everything,) = plan_members(np.array([1, 0, 0, 0], dtype=np.float32), AUTO)
    assert len(everything.validation) == 0 and len(everything.train) == 4


def test_stratified_helpers_are_seeded_and_refuse_what_they_cannot_do() -> None:
    labels = np.array(["a"] * 90 + ["b"] * 10)
    mask = stratified_holdout_mask(labels, 0.2, seed=3)
    assert mask.sum() == 20 and (labels[mask] == "b").sum() == 2
    np.testing.assert_array_equal(mask, stratified_holdout_mask(labels, 0.2, seed=3))
    assert not np.array_equal(mask, stratified_holdout_mask(labels, 0.2, seed=4))
    folds = stratified_folds(labels, 5, seed=3)
    assert np.bincount(folds).tolist() == [20] * 5
    assert all((labels[folds == k] == "b").sum() == 2 for k in range(5))
    with pytest.raises(DataError, match="at least 2 folds"):
        stratified_folds(labels, 1, seed=0)
    with pytest.raises(DataError, match="missing values"):
        stratified_holdout_mask(np.array([1.0, np.nan, 0.0]), 0.5, seed=0)
    import pandas as pd

    frame = pd.DataFrame({"x": range(100), "y": labels})
    train, holdout = stratified_split(frame, frame["y"], 0.2, seed=3)
    assert list(holdout["x"]) == list(np.flatnonzero(mask)) and len(train) == 80
    with pytest.raises(DataError, match="one part would be empty"):
        stratified_split(frame.head(2), frame["y"].head(2), 0.2, seed=0)
