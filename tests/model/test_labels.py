"""Binary labels in every common form, the positive class and its rule, and the refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kfp_cicd.errors import DataError
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.labels import BinaryLabels, label_text


@pytest.mark.parametrize(
    ("values", "positive", "negative", "rule"),
    [
        ([0, 1, 0, 0], "1", "0", "larger value"),
        ([0.0, 1.0, 0.0], "1", "0", "larger value"),
        ([True, False, False], "true", "false", "reads as yes"),
        (["Yes", "No", "No"], "Yes", "No", "reads as yes"),
        (["n", "Y", "n"], "Y", "n", "reads as yes"),
        (["no", "yes"], "yes", "no", "reads as yes"),
        ([">50K", "<=50K", "<=50K", "<=50K"], ">50K", "<=50K", "less frequent class"),
        (["CH", "MM", "CH"], "MM", "CH", "less frequent class"),
        ([-1, 1, -1], "1", "-1", "larger value"),
    ],
)
def test_the_positive_class_follows_the_documented_rule(
    values: list, positive: str, negative: str, rule: str
) -> None:
    labels = BinaryLabels.infer(pd.Series(values), "y")
    assert (labels.positive, labels.negative) == (positive, negative)
    assert rule in labels.rule
    encoded = labels.encode(pd.Series(values))
    assert encoded.dtype == np.float32
    assert encoded.tolist() == [1.0 if label_text(v) == positive else 0.0 for v in values]


def test_positive_label_names_either_class_whatever_its_spelling() -> None:
    values = pd.Series(["Yes", "No", "No"])
    chosen = BinaryLabels.infer(values, "churn", positive_label="no")
    assert chosen.positive == "No" and chosen.negative == "Yes"
    assert chosen.rule == "positive_label='no'"
    assert chosen.encode(values).tolist() == [0.0, 1.0, 1.0]
    assert BinaryLabels.infer(pd.Series([0, 1]), "y", positive_label="0").positive == "0"
    assert BinaryLabels.infer(pd.Series([0.0, 1.0]), "y", positive_label="1.0").positive == "1"


@pytest.mark.parametrize(
    ("values", "positive_label", "message"),
    [
        ([1, 1, 1], "", "a single value"),
        (["a", "b", "c"], "", "3 distinct values"),
        ([0, 1, None], "", "missing value"),
        (["Yes", "No"], "maybe", "positive_label 'maybe' is not a value"),
    ],
)
def test_anything_but_two_classes_is_refused_naming_the_column(
    values: list, positive_label: str, message: str
) -> None:
    with pytest.raises(DataError, match=message) as refused:
        BinaryLabels.infer(pd.Series(values, dtype=object), "default", positive_label)
    assert "'default'" in str(refused.value)


def test_a_holdout_value_the_model_does_not_know_is_refused() -> None:
    labels = BinaryLabels.infer(pd.Series(["Yes", "No"]), "default")
    with pytest.raises(DataError, match=r"\['Maybe'\].*neither"):
        labels.encode(pd.Series(["Yes", "Maybe"]))
    with pytest.raises(DataError, match="label column 'default' is missing"):
        labels.encode_frame(pd.DataFrame({"other": [1]}))


def test_the_classes_travel_in_features_json_and_old_specs_mean_zero_one() -> None:
    labels = BinaryLabels.infer(pd.Series(["Yes", "No"]), "default")
    spec = FeatureSpec("default", ("balance",), ("student",), labels)
    assert FeatureSpec.from_dict(spec.to_dict()).labels == labels
    old = FeatureSpec.from_dict({"label": "is_fraud", "features": [{"name": "amount", "kind": "numeric"}]})
    assert (old.labels.positive, old.labels.negative) == ("1", "0")
