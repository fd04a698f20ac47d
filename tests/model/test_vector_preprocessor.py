"""The vectorised preprocessor equals the fitted ColumnTransformer, bit for bit, or is not used.

``kfp_cicd/model/pyfunc_model.py`` scores column arrays with numpy instead of a DataFrame through
scikit-learn (the predictor's per-request cost). These tests generate many frames (missing values,
unseen categories, extreme numbers) and compare with ``ColumnTransformer.transform``; preprocessors
of other shapes must be refused, and a model holding one must still score correctly.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.pyfunc.model import PythonModelContext
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions
from kfp_cicd.model.features import FeatureSpec
from kfp_cicd.model.network import TabularMLP
from kfp_cicd.model.packaging import export_network
from kfp_cicd.model.preprocessing import build_preprocessor, feature_frame
from kfp_cicd.model.pyfunc_model import TabularClassifier, UnsupportedPreprocessor, VectorPreprocessor

UNSEEN = "never-seen-in-training"


@pytest.fixture(scope="module")
def training_features(feature_spec: FeatureSpec) -> pd.DataFrame:
    frame = generate_transactions(600, seed=21)
    frame.loc[frame.index[::37], "country"] = np.nan  # so "__missing__" is a learned category
    frame.loc[frame.index[::41], "amount"] = np.nan
    return feature_frame(frame, feature_spec)


@pytest.fixture(scope="module")
def fitted(feature_spec: FeatureSpec, training_features: pd.DataFrame) -> ColumnTransformer:
    """The project's own preprocessor, fitted on generated data."""
    return build_preprocessor(feature_spec).fit(training_features)


def _variant(
    spec: FeatureSpec, features: pd.DataFrame, *, numeric_steps: list, unknown: str
) -> ColumnTransformer:
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown=unknown, sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [
            ("categorical", categorical, list(spec.categorical)),
            ("numbers", Pipeline(numeric_steps), list(spec.numeric)),
        ],
        sparse_threshold=0.0,
    ).fit(features)


def _column_strategy(name: str, categories: list[str], numeric: bool) -> st.SearchStrategy[Any]:
    if numeric:
        return st.one_of(
            st.just(math.nan),
            st.integers(-(10**6), 10**6),
            st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
        )
    return st.one_of(st.sampled_from(categories), st.none(), st.just(UNSEEN), st.text(max_size=3))


def _frame_for_column_transformer(values: dict[str, list[Any]], spec: FeatureSpec) -> pd.DataFrame:
    """What training hands the ColumnTransformer: floats with NaN, text with NaN for missing."""
    return pd.DataFrame(
        {
            name: pd.Series([np.nan if v is None else v for v in values[name]], dtype=object)
            if name in spec.categorical
            else pd.Series(values[name], dtype=np.float64)
            for name in spec.columns
        }
    )


@st.composite
def column_values(
    draw: st.DrawFn, preprocessor: ColumnTransformer, spec: FeatureSpec
) -> dict[str, list[Any]]:
    rows = draw(st.integers(1, 12))
    encoder = next(t for name, t, _ in preprocessor.transformers_ if name == "categorical").steps[-1][1]
    categories = {
        name: list(values) for name, values in zip(spec.categorical, encoder.categories_, strict=True)
    }
    return {
        name: draw(
            st.lists(
                _column_strategy(name, categories.get(name, []), name in spec.numeric),
                min_size=rows,
                max_size=rows,
            )
        )
        for name in spec.columns
    }


def _assert_equal_to_column_transformer(
    preprocessor: ColumnTransformer, spec: FeatureSpec, values: dict[str, list[Any]]
) -> None:
    rows = len(values[spec.columns[0]])
    frame = _frame_for_column_transformer(values, spec)
    expected = np.asarray(preprocessor.transform(frame), dtype=np.float32)
    actual = VectorPreprocessor(preprocessor, spec.categorical).transform(values, rows)
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_equals_the_project_column_transformer(
    fitted: ColumnTransformer, feature_spec: FeatureSpec, data: st.DataObject
) -> None:
    _assert_equal_to_column_transformer(fitted, feature_spec, data.draw(column_values(fitted, feature_spec)))


@pytest.mark.parametrize(
    "numeric_steps",
    [
        [("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler(with_mean=False))],
        [("scale", StandardScaler()), ("impute", SimpleImputer(strategy="constant", fill_value=-1.0))],
    ],
    ids=["mean-imputer-unit-scale", "scale-then-impute"],
)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_equals_other_supported_layouts(
    feature_spec: FeatureSpec, training_features: pd.DataFrame, numeric_steps: list, data: st.DataObject
) -> None:
    preprocessor = _variant(feature_spec, training_features, numeric_steps=numeric_steps, unknown="ignore")
    _assert_equal_to_column_transformer(
        preprocessor, feature_spec, data.draw(column_values(preprocessor, feature_spec))
    )


def test_unseen_categories_are_refused_when_the_encoder_refuses_them(
    feature_spec: FeatureSpec, training_features: pd.DataFrame
) -> None:
    preprocessor = _variant(
        feature_spec,
        training_features,
        unknown="error",
        numeric_steps=[("impute", SimpleImputer()), ("scale", StandardScaler())],
    )
    values = {name: list(training_features[name].head(2)) for name in feature_spec.columns}
    _assert_equal_to_column_transformer(preprocessor, feature_spec, values)
    values["channel"] = ["pos", "carrier-pigeon"]
    with pytest.raises(ValueError, match=r"unknown categories.*carrier-pigeon"):
        preprocessor.transform(_frame_for_column_transformer(values, feature_spec))
    with pytest.raises(ValueError, match=r"unknown categories \['carrier-pigeon'\] in column 'channel'"):
        VectorPreprocessor(preprocessor, feature_spec.categorical).transform(values, 2)


def test_infinite_numbers_are_refused_naming_the_column(
    fitted: ColumnTransformer, feature_spec: FeatureSpec
) -> None:
    values = {name: [0.0] if name in feature_spec.numeric else ["x"] for name in feature_spec.columns}
    values["amount"] = [math.inf]
    with pytest.raises(ValueError, match=r"\['amount'\] hold infinite values"):
        VectorPreprocessor(fitted, feature_spec.categorical).transform(values, 1)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda spec, f: ColumnTransformer([("n", MinMaxScaler(), list(spec.numeric))]).fit(f),
            "MinMaxScaler",
        ),
        (
            lambda spec, f: ColumnTransformer(
                [("n", StandardScaler(), list(spec.numeric))], remainder="passthrough"
            ).fit(f),
            "remainder",
        ),
        (
            lambda spec, f: ColumnTransformer(
                [("n", SimpleImputer(add_indicator=True), list(spec.numeric))]
            ).fit(f),
            "indicator",
        ),
        (
            lambda spec, f: ColumnTransformer(
                [("c", OneHotEncoder(drop="first"), list(spec.categorical))]
            ).fit(f),
            "sparse",
        ),
        (
            lambda spec, f: ColumnTransformer(
                [("c", OneHotEncoder(drop="first", sparse_output=False), list(spec.categorical))]
            ).fit(f),
            "drops or groups",
        ),
        (lambda spec, f: StandardScaler().fit(f[list(spec.numeric)]), "not a fitted ColumnTransformer"),
    ],
)
def test_other_shapes_are_refused_naming_what(
    feature_spec: FeatureSpec, training_features: pd.DataFrame, change, named: str
) -> None:
    with pytest.raises(UnsupportedPreprocessor, match=named):
        VectorPreprocessor(
            change(feature_spec, training_features.fillna({"amount": 0.0})), feature_spec.categorical
        )


def _load(tmp_path: Path, preprocessor: Any, spec: FeatureSpec, width: int) -> TabularClassifier:
    """A TabularClassifier loaded from real artifacts (as MLflow would, without an MLmodel around them)."""
    skops.io.dump(preprocessor, tmp_path / "preprocessor.skops")
    torch.manual_seed(3)
    export_network(TabularMLP(width, hidden_units=(8,)), width, tmp_path / "network.pt2")
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "label": spec.label,
                "numeric": list(spec.numeric),
                "categorical": list(spec.categorical),
                "decision_threshold": 0.5,
                "numeric_ranges": {},
            }
        )
    )
    model = TabularClassifier()
    model.load_context(
        PythonModelContext(
            artifacts={
                name: str(tmp_path / file)
                for name, file in (
                    ("preprocessor", "preprocessor.skops"),
                    ("network", "network.pt2"),
                    ("config", "config.json"),
                )
            },
            model_config={},
        )
    )
    return model


def _holdout(spec: FeatureSpec) -> pd.DataFrame:
    frame = generate_transactions(300, seed=4).drop(columns=[LABEL_COLUMN])
    frame.loc[frame.index[::7], "country"] = np.nan
    frame.loc[frame.index[::11], "device_type"] = UNSEEN
    frame.loc[frame.index[::13], "amount"] = np.nan
    return frame


def _reference_probabilities(
    model: TabularClassifier, preprocessor: ColumnTransformer, frame: pd.DataFrame, spec: FeatureSpec
) -> np.ndarray:
    """Training's own path: ``feature_frame`` through the ColumnTransformer, then the network."""
    features = feature_frame(frame.assign(**{LABEL_COLUMN: 0}), spec)
    matrix = np.asarray(preprocessor.transform(features), dtype=np.float32)
    with torch.no_grad():
        return torch.sigmoid(model.network(torch.from_numpy(matrix))).numpy().astype(np.float64)


def test_the_model_scores_the_same_through_both_paths(
    tmp_path: Path, fitted: ColumnTransformer, feature_spec: FeatureSpec
) -> None:
    width = len(fitted.get_feature_names_out())
    model = _load(tmp_path, fitted, feature_spec, width)
    assert model.vector_preprocessor is not None and model.vector_problem is None
    frame = _holdout(feature_spec)
    fast = model.predict(None, frame)
    reference = _reference_probabilities(model, fitted, frame, feature_spec)
    np.testing.assert_array_equal(fast["probability"].to_numpy(), reference)
    assert fast["prediction"].tolist() == (reference >= 0.5).astype(int).tolist()
    model.vector_preprocessor = None  # what a model with an unsupported preprocessor runs
    np.testing.assert_array_equal(model.predict(None, frame)["probability"].to_numpy(), reference)


def test_an_unsupported_preprocessor_falls_back_with_a_warning(
    tmp_path: Path,
    feature_spec: FeatureSpec,
    training_features: pd.DataFrame,
    caplog: pytest.LogCaptureFixture,
) -> None:
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    numeric = Pipeline([("impute", SimpleImputer()), ("scale", MinMaxScaler())])
    preprocessor = ColumnTransformer(
        [
            ("numeric", numeric, list(feature_spec.numeric)),
            ("categorical", categorical, list(feature_spec.categorical)),
        ],
        sparse_threshold=0.0,
    )
    preprocessor.fit(training_features)
    width = len(preprocessor.get_feature_names_out())
    with caplog.at_level(logging.WARNING):
        model = _load(tmp_path, preprocessor, feature_spec, width)
    assert model.vector_preprocessor is None and "MinMaxScaler" in model.vector_problem
    assert "scoring through the ColumnTransformer" in caplog.text
    frame = _holdout(feature_spec)
    reference = _reference_probabilities(model, preprocessor, frame, feature_spec)
    np.testing.assert_array_equal(model.predict(None, frame)["probability"].to_numpy(), reference)


def test_a_saved_model_scores_columns_like_mlflow_predict(
    untrained_model_dir: Path, feature_spec: FeatureSpec
) -> None:
    """Through MLflow (schema enforcement and all) and through ``score_columns``: the same numbers."""
    loaded = mlflow.pyfunc.load_model(str(untrained_model_dir))
    model = loaded.unwrap_python_model()
    assert model.vector_preprocessor is not None
    frame = generate_transactions(50, seed=8).drop(columns=[LABEL_COLUMN])
    frame.loc[frame.index[::5], "merchant_category"] = UNSEEN
    expected = loaded.predict(frame)
    columns = {name: frame[name].tolist() for name in feature_spec.columns}
    probability, prediction = model.score_columns(columns)
    np.testing.assert_array_equal(probability, expected["probability"].to_numpy())
    np.testing.assert_array_equal(prediction, expected["prediction"].to_numpy())
    with pytest.raises(ValueError, match=r"missing feature columns \['amount'\]"):
        model.score_columns({name: v for name, v in columns.items() if name != "amount"})
    with pytest.raises(ValueError, match="same, non-zero number of rows"):
        model.score_columns({**columns, "hour": columns["hour"][:3]})


def test_a_model_saved_before_column_scoring_is_still_served(
    untrained_model_dir: Path, tmp_path: Path, feature_spec: FeatureSpec
) -> None:
    """An older registered version (its pyfunc code has no ``score_columns``) scores through a DataFrame."""
    import shutil

    from kfp_cicd.model.integrity import write_checksums
    from kfp_cicd.serving.predictor import PyfuncPredictor

    old = Path(shutil.copytree(untrained_model_dir, tmp_path / "model"))
    shutil.copy(
        Path(__file__).with_name("data") / "pyfunc_model_before_column_scoring.py", old / "pyfunc_model.py"
    )
    write_checksums(old)
    predictor = PyfuncPredictor("old", old)
    assert predictor.load()
    assert not hasattr(predictor._python_model, "score_columns")
    frame = generate_transactions(6, seed=12).drop(columns=[LABEL_COLUMN])
    answer = predictor.predict({"instances": json.loads(frame.to_json(orient="records"))})
    expected = mlflow.pyfunc.load_model(str(untrained_model_dir)).predict(frame)
    np.testing.assert_allclose(
        [p["probability"] for p in answer["predictions"]], expected["probability"], rtol=0, atol=1e-7
    )
    assert [p["prediction"] for p in answer["predictions"]] == expected["prediction"].tolist()
