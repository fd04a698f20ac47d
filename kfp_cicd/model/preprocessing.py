"""Feature preprocessing with scikit-learn: impute + scale numerics, impute + one-hot categoricals."""

from __future__ import annotations

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from kfp_cicd.errors import DataError
from kfp_cicd.model.features import FeatureSpec

MISSING_CATEGORY = "__missing__"


def build_preprocessor(spec: FeatureSpec) -> ColumnTransformer:
    """An unfitted transformer producing a dense float matrix in ``spec.columns`` order."""
    transformers = []
    if spec.numeric:
        numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        transformers.append(("numeric", numeric, list(spec.numeric)))
    if spec.categorical:
        categorical = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categorical, list(spec.categorical)))
    return ColumnTransformer(transformers, sparse_threshold=0.0)


def feature_frame(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The feature columns of ``frame`` with categoricals as strings; names missing ones."""
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise DataError(f"data is missing feature columns {missing}")
    features = frame.loc[:, list(spec.columns)].copy()
    for column in spec.categorical:
        values = features[column]
        features[column] = values.where(values.isna(), values.astype(str))
    return features
