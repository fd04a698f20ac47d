"""The synthetic fraud data set: reproducible, well-typed, ~2 % fraud, learnable but not trivial."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from kfp_cicd.data.synthetic import (
    CATEGORICAL_FEATURES,
    LABEL_COLUMN,
    NUMERIC_FEATURES,
    DatasetFiles,
    generate_dataset,
    generate_transactions,
    split_train_holdout,
)
from kfp_cicd.data.tables import read_table
from kfp_cicd.errors import DataError

ROWS = 20_000


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """One 20k-row draw shared by the read-only tests (generation is the slow part)."""
    return generate_transactions(ROWS, seed=7)


@pytest.fixture(scope="module")
def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The default stratified 80/20 split of ``frame``."""
    return split_train_holdout(frame, seed=7)


def test_columns_are_the_declared_features_then_the_label(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, LABEL_COLUMN]
    assert len(NUMERIC_FEATURES) + len(CATEGORICAL_FEATURES) >= 20
    assert not set(NUMERIC_FEATURES) & set(CATEGORICAL_FEATURES)


def test_dtypes_are_int64_float64_or_strings(frame: pd.DataFrame) -> None:
    for column in NUMERIC_FEATURES:
        assert frame[column].dtype in (np.int64, np.float64), column
    for column in CATEGORICAL_FEATURES:
        assert frame[column].dtype == object, column
        assert frame[column].map(type).eq(str).all(), column
    assert frame[LABEL_COLUMN].dtype == np.int64
    assert set(frame[LABEL_COLUMN].unique()) == {0, 1}


def test_values_are_complete_and_plausible(frame: pd.DataFrame) -> None:
    assert not frame.isna().any().any()
    assert (frame["amount"] > 0).all()
    assert frame["hour"].between(0, 23).all()
    assert frame["day_of_week"].between(0, 6).all()
    assert frame["customer_age"].between(18, 90).all()
    assert frame["merchant_risk_score"].between(0, 1).all()
    assert (frame["txn_count_1h"] <= frame["txn_count_24h"]).all()
    assert (frame["amount_sum_24h"] >= frame["amount"]).all()
    assert (frame["card_present"] == (frame["channel"] != "online")).all()
    assert set(frame["email_domain_risk"]) == {"low", "medium", "high"}
    assert {"online", "pos", "atm", "contactless"} == set(frame["channel"])


def test_same_seed_gives_the_same_frame_and_another_seed_a_different_one() -> None:
    first = generate_transactions(2_000, seed=3)
    pd.testing.assert_frame_equal(first, generate_transactions(2_000, seed=3))
    other = generate_transactions(2_000, seed=4)
    assert not first.equals(other)
    assert (first["amount"] != other["amount"]).mean() > 0.9


@pytest.mark.parametrize("fraud_rate", [0.01, 0.02, 0.05])
def test_fraud_rate_follows_the_target(fraud_rate: float) -> None:
    labels = generate_transactions(ROWS, seed=1, fraud_rate=fraud_rate)[LABEL_COLUMN]
    tolerance = 4 * math.sqrt(fraud_rate * (1 - fraud_rate) / ROWS)
    assert abs(labels.mean() - fraud_rate) < tolerance


def test_default_fraud_rate_is_about_two_percent(frame: pd.DataFrame) -> None:
    assert 0.015 < frame[LABEL_COLUMN].mean() < 0.025


def test_a_single_row_can_be_generated() -> None:
    one = generate_transactions(1, seed=0)
    assert len(one) == 1
    assert not one.isna().any().any()


@pytest.mark.parametrize(
    ("kwargs", "mentions"),
    [
        ({"n_rows": 0}, "n_rows"),
        ({"n_rows": -5}, "n_rows"),
        ({"n_rows": 10.5}, "n_rows"),
        ({"n_rows": True}, "n_rows"),
        ({"n_rows": 10, "fraud_rate": 0.0}, "fraud_rate"),
        ({"n_rows": 10, "fraud_rate": 0.5}, "fraud_rate"),
        ({"n_rows": 10, "fraud_rate": -0.1}, "fraud_rate"),
        ({"n_rows": 10, "fraud_rate": float("nan")}, "fraud_rate"),
        ({"n_rows": 10, "seed": -1}, "seed"),
    ],
)
def test_invalid_arguments_are_refused(kwargs: dict, mentions: str) -> None:
    with pytest.raises(DataError, match=mentions):
        generate_transactions(**kwargs)


def _linear_model() -> object:
    """Logistic regression on scaled numerics and one-hot categoricals: a plain baseline."""
    columns = ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(NUMERIC_FEATURES)),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
        ]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=1_000))


def test_the_label_is_learnable(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, holdout = split
    model = _linear_model().fit(train.drop(columns=LABEL_COLUMN), train[LABEL_COLUMN])
    scores = model.predict_proba(holdout.drop(columns=LABEL_COLUMN))[:, 1]
    auc = roc_auc_score(holdout[LABEL_COLUMN], scores)
    assert 0.8 < auc < 0.98


def test_no_single_feature_gives_the_label_away(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, holdout = split
    labels = holdout[LABEL_COLUMN]
    aucs = {}
    for column in NUMERIC_FEATURES:
        auc = roc_auc_score(labels, holdout[column])
        aucs[column] = max(auc, 1 - auc)
    for column in CATEGORICAL_FEATURES:
        rate_by_value = train.groupby(column)[LABEL_COLUMN].mean()
        aucs[column] = roc_auc_score(labels, holdout[column].map(rate_by_value).fillna(0.0))
    best = max(aucs, key=aucs.get)
    assert aucs[best] < 0.85, f"{best} alone reaches AUC {aucs[best]:.3f}"


def test_fraud_depends_on_interactions(frame: pd.DataFrame) -> None:
    """A large spend is far riskier online than in person: the signal is not additive-only."""
    large = frame["amount_to_avg_ratio"] > 4
    online = frame["channel"] == "online"
    rate = frame[LABEL_COLUMN]
    assert rate[large & online].mean() > 3 * rate[large & ~online].mean()
    assert rate[large & online].mean() > 3 * rate[~large & online].mean()


def test_split_is_stratified_and_complete(
    frame: pd.DataFrame, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, holdout = split
    positives = int(frame[LABEL_COLUMN].sum())
    assert len(train) + len(holdout) == len(frame)
    assert len(holdout) == pytest.approx(0.2 * len(frame), abs=2)
    assert int(holdout[LABEL_COLUMN].sum()) == round(0.2 * positives)
    assert holdout[LABEL_COLUMN].mean() == pytest.approx(frame[LABEL_COLUMN].mean(), abs=1e-3)
    assert list(train.index) == list(range(len(train)))
    assert list(holdout.index) == list(range(len(holdout)))
    together = pd.concat([train, holdout]).sort_values(list(frame.columns)).reset_index(drop=True)
    expected = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, expected)


def test_split_is_deterministic_per_seed(frame: pd.DataFrame) -> None:
    first_train, first_holdout = split_train_holdout(frame, seed=1)
    again_train, again_holdout = split_train_holdout(frame, seed=1)
    pd.testing.assert_frame_equal(first_holdout, again_holdout)
    pd.testing.assert_frame_equal(first_train, again_train)
    other_holdout = split_train_holdout(frame, seed=2)[1]
    assert not first_holdout.equals(other_holdout)


def test_split_refuses_bad_arguments(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="holdout_fraction"):
        split_train_holdout(frame, holdout_fraction=1.0)
    with pytest.raises(DataError, match="'target'"):
        split_train_holdout(frame, label_column="target")
    with pytest.raises(DataError, match="empty"):
        split_train_holdout(frame.head(1))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_generate_dataset_writes_train_and_holdout(
    tmp_path, caplog: pytest.LogCaptureFixture, fmt: str
) -> None:
    out_dir = tmp_path / "nested" / "data"
    with caplog.at_level(logging.INFO, logger="kfp_cicd.data.synthetic"):
        files = generate_dataset(out_dir, rows=1_000, seed=5, fmt=fmt)
    assert files == DatasetFiles(train=out_dir / f"train.{fmt}", holdout=out_dir / f"holdout.{fmt}")
    train, holdout = read_table(str(files.train)), read_table(str(files.holdout))
    assert (len(train), len(holdout)) == (800, 200)
    expected_train, _ = split_train_holdout(generate_transactions(1_000, seed=5), seed=5)
    pd.testing.assert_frame_equal(train, expected_train)
    messages = [r.getMessage() for r in caplog.records if r.name == "kfp_cicd.data.synthetic"]
    assert len(messages) == 1
    assert str(files.train) in messages[0] and str(files.holdout) in messages[0]


def test_generate_dataset_refuses_an_unknown_format(tmp_path) -> None:
    with pytest.raises(DataError, match="'json'"):
        generate_dataset(tmp_path, rows=100, fmt="json")
    assert list(tmp_path.iterdir()) == []
