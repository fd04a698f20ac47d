"""The MLflow pyfunc model served everywhere (MLflow "models from code").

MLflow copies this file into every saved model, so a model directory is self-contained: loading it
needs mlflow, pandas, numpy, scikit-learn, skops and torch, but not kfp-cicd. Keep its imports to
those packages and the standard library.

Artifacts (see ``kfp_cicd.model.packaging``):
- ``preprocessor``: the fitted scikit-learn ``ColumnTransformer``, saved with skops (no pickle).
- ``network``: the network exported with ``torch.export`` (no Python class needed to load it).
- ``config``: JSON with the feature columns, the label, the decision threshold (and the rule that
  chose it) and the probability calibration: ``{"method": "platt", "slope": a, "intercept": b}``
  turns the network's logit ``z`` into ``sigmoid(a * z + b)``, fitted on validation rows at training
  time. Models saved before calibration existed have no such entry and score ``sigmoid(z)`` as before.

Scoring speed: ``ColumnTransformer.transform`` costs ~10 ms on a one-row DataFrame (pandas and
validation overhead, not arithmetic). At load the fitted imputers, scaler and one-hot encoder are
therefore turned into a :class:`VectorPreprocessor` that computes the same matrix with a few numpy
operations on column arrays, checked at load against the ColumnTransformer on probe rows; a
preprocessor of any other shape keeps the ColumnTransformer path (with a warning saying why).
:meth:`TabularClassifier.score_columns` scores column arrays without pandas (the KServe predictor
calls it); :meth:`TabularClassifier.predict` (MLflow) uses the same path.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import skops.io
import torch
from mlflow.pyfunc import PythonModel
from mlflow.pyfunc.model import PythonModelContext
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

log = logging.getLogger(__name__)

PROBABILITY = "probability"
# Types skops does not trust by default but a fitted ColumnTransformer of ours legitimately holds.
# Anything else in the preprocessor file means it is not what training wrote: refuse it.
ALLOWED_SKOPS_TYPES = frozenset({"numpy.dtype"})
PREDICTION = "prediction"
# OneHotEncoder settings under which an unseen category becomes a row of zeros.
IGNORING_UNKNOWN = frozenset({"ignore", "infrequent_if_exist", "warn"})


CALIBRATION_METHODS = frozenset({"none", "platt"})


class UnsupportedPreprocessor(ValueError):
    """The fitted preprocessor has a shape :class:`VectorPreprocessor` does not reproduce."""


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _steps(transformer: Any, group: str) -> list[Any]:
    """The estimators of one ColumnTransformer group, in the order they run."""
    steps = [step for _, step in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    steps = [step for step in steps if step not in (None, "passthrough")]
    for step in steps:
        if type(step) not in (SimpleImputer, StandardScaler, OneHotEncoder):
            raise UnsupportedPreprocessor(f"group {group!r} holds a {type(step).__name__}")
    return steps


def _imputer_fill(imputer: SimpleImputer, group: str) -> np.ndarray:
    """The fitted fill value per column; refuses settings that add or drop output columns."""
    if not _is_nan(imputer.missing_values):
        raise UnsupportedPreprocessor(f"group {group!r}: imputer missing_values={imputer.missing_values!r}")
    if imputer.add_indicator:
        raise UnsupportedPreprocessor(f"group {group!r}: imputer adds indicator columns")
    statistics = np.asarray(imputer.statistics_)
    if statistics.dtype.kind == "f" and np.isnan(statistics).any() and not imputer.keep_empty_features:
        raise UnsupportedPreprocessor(f"group {group!r}: imputer drops all-missing columns")
    return statistics


@dataclass(frozen=True)
class NumericBlock:
    """Numeric columns through imputers and scalers, written to ``out[:, start:start + len(columns)]``."""

    columns: tuple[str, ...]
    start: int
    operations: tuple[Callable[[np.ndarray], np.ndarray], ...]

    @classmethod
    def build(cls, group: str, columns: tuple[str, ...], steps: list[Any], start: int) -> NumericBlock:
        operations: list[Callable[[np.ndarray], np.ndarray]] = []
        for step in steps:
            if isinstance(step, SimpleImputer):
                fill = _imputer_fill(step, group).astype(np.float64)
                operations.append(lambda matrix, fill=fill: np.where(np.isnan(matrix), fill, matrix))
            elif isinstance(step, StandardScaler):
                mean = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
                scale = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None
                operations.append(lambda matrix, mean=mean, scale=scale: _standardise(matrix, mean, scale))
            else:
                raise UnsupportedPreprocessor(
                    f"group {group!r} has a {type(step).__name__} among numeric steps"
                )
        return cls(columns, start, tuple(operations))

    @property
    def width(self) -> int:
        return len(self.columns)

    def write(self, out: np.ndarray, values: Mapping[str, Any], rows: int) -> None:
        matrix = np.empty((rows, len(self.columns)), dtype=np.float64)
        for index, name in enumerate(self.columns):
            matrix[:, index] = values[name]
        if np.isinf(matrix).any():
            bad = [name for index, name in enumerate(self.columns) if np.isinf(matrix[:, index]).any()]
            raise ValueError(f"numeric column(s) {bad} hold infinite values; send finite numbers")
        for operation in self.operations:
            matrix = operation(matrix)
        out[:, self.start : self.start + len(self.columns)] = matrix


def _standardise(matrix: np.ndarray, mean: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    """StandardScaler.transform: subtract the mean, then divide by the scale (each when fitted)."""
    if mean is not None:
        matrix = matrix - mean
    if scale is not None:
        matrix = matrix / scale
    return matrix


@dataclass(frozen=True)
class CategoricalBlock:
    """Text columns one-hot encoded: each value's output index, missing values imputed first.

    ``lookups[j]`` maps a category of column ``j`` to its absolute output index; ``None`` (a
    missing value) maps to the imputer's fill category when the encoder knows it.
    """

    columns: tuple[str, ...]
    start: int
    width: int
    lookups: tuple[dict[Any, int], ...]
    ignore_unknown: bool

    @classmethod
    def build(cls, group: str, columns: tuple[str, ...], steps: list[Any], start: int) -> CategoricalBlock:
        *imputers, encoder = steps
        if not isinstance(encoder, OneHotEncoder) or not all(isinstance(s, SimpleImputer) for s in imputers):
            raise UnsupportedPreprocessor(f"group {group!r}: expected imputers followed by a OneHotEncoder")
        if len(imputers) > 1:
            raise UnsupportedPreprocessor(f"group {group!r}: more than one imputer before the encoder")
        if encoder.drop_idx_ is not None or getattr(encoder, "_infrequent_enabled", False):
            raise UnsupportedPreprocessor(f"group {group!r}: the encoder drops or groups categories")
        if encoder.handle_unknown not in IGNORING_UNKNOWN | {"error"}:
            raise UnsupportedPreprocessor(f"group {group!r}: handle_unknown={encoder.handle_unknown!r}")
        fills = _imputer_fill(imputers[0], group) if imputers else [None] * len(columns)
        lookups = []
        offset = start
        for fill, categories in zip(fills, encoder.categories_, strict=True):
            if not all(isinstance(category, str) for category in categories):
                raise UnsupportedPreprocessor(f"group {group!r}: categories other than text")
            lookup: dict[Any, int] = {category: offset + i for i, category in enumerate(categories)}
            if fill is not None and fill in lookup:
                lookup[None] = lookup[fill]
            lookups.append(lookup)
            offset += len(categories)
        return cls(columns, start, offset - start, tuple(lookups), encoder.handle_unknown in IGNORING_UNKNOWN)

    def write(self, out: np.ndarray, values: Mapping[str, Any], rows: int) -> None:
        indices = np.empty((rows, len(self.columns)), dtype=np.int64)
        for index, (name, lookup) in enumerate(zip(self.columns, self.lookups, strict=True)):
            column = values[name]
            positions = [lookup.get(value, -1) for value in column]
            if -1 in positions:  # rare: unseen, non-str or NaN values; look each up the slow way
                positions = [lookup.get(_category_key(value), -1) for value in column]
                if not self.ignore_unknown and -1 in positions:
                    unknown = sorted({str(v) for v, p in zip(column, positions, strict=True) if p < 0})
                    raise ValueError(f"Found unknown categories {unknown} in column {name!r}")
            indices[:, index] = positions
        found = indices >= 0
        out[np.nonzero(found)[0], indices[found]] = 1.0


def _category_key(value: Any) -> Any:
    """A value as the encoder sees it: missing (None/NaN) → None, anything else as its text."""
    if value is None or _is_nan(value) or (isinstance(value, np.floating) and np.isnan(value)):
        return None
    return value if isinstance(value, str) else str(value)


class VectorPreprocessor:
    """The fitted ColumnTransformer's ``transform`` as numpy operations on column arrays.

    Understands groups of SimpleImputer / StandardScaler (numeric) and SimpleImputer + OneHotEncoder
    (categorical) with dropped remainder; anything else raises :class:`UnsupportedPreprocessor`.
    The output is the ColumnTransformer's float64 matrix cast to float32, bit for bit.
    """

    def __init__(self, preprocessor: Any, categorical: Sequence[str]) -> None:
        if not isinstance(preprocessor, ColumnTransformer) or not hasattr(preprocessor, "transformers_"):
            raise UnsupportedPreprocessor(f"not a fitted ColumnTransformer: {type(preprocessor).__name__}")
        if preprocessor.sparse_output_:
            raise UnsupportedPreprocessor("the ColumnTransformer emits a sparse matrix")
        self.blocks: list[NumericBlock | CategoricalBlock] = []
        position = 0
        for group, transformer, columns in preprocessor.transformers_:
            layout = preprocessor.output_indices_[group]
            if transformer == "drop":
                continue
            if (
                transformer == "passthrough"
                or not isinstance(columns, list)
                or not all(isinstance(c, str) for c in columns)
            ):
                raise UnsupportedPreprocessor(
                    f"group {group!r} passes columns through or selects them other than by name"
                )
            steps = _steps(transformer, group)
            kind = CategoricalBlock if steps and isinstance(steps[-1], OneHotEncoder) else NumericBlock
            if (kind is CategoricalBlock) != all(c in categorical for c in columns):
                raise UnsupportedPreprocessor(f"group {group!r} mixes numeric and categorical columns")
            block = kind.build(group, tuple(columns), steps, position)
            if (layout.start, layout.stop) != (position, position + block.width):
                raise UnsupportedPreprocessor(
                    f"group {group!r} fills columns {layout.start}:{layout.stop}, "
                    f"expected {position}:{position + block.width}"
                )
            self.blocks.append(block)
            position += block.width
        self.width = position
        self.columns = [name for block in self.blocks for name in block.columns]

    def transform(self, values: Mapping[str, Any], rows: int) -> np.ndarray:
        """The float32 model input for ``rows`` rows given as one array (or list) per column."""
        out = np.zeros((rows, self.width), dtype=np.float32)
        for block in self.blocks:
            block.write(out, values, rows)
        return out


def probe_columns(preprocessor: VectorPreprocessor, rows: int = 10) -> dict[str, list[Any]]:
    """Rows that exercise every category, missing values, an unseen category and spread-out numbers."""
    values: dict[str, list[Any]] = {}
    for block in preprocessor.blocks:
        if isinstance(block, CategoricalBlock):
            for name, lookup in zip(block.columns, block.lookups, strict=True):
                cycle: list[Any] = sorted(k for k in lookup if k is not None)
                if None in lookup or block.ignore_unknown:
                    cycle.append(None)
                if block.ignore_unknown:
                    cycle.append("__never_seen_category__")
                values[name] = [cycle[i % len(cycle)] for i in range(max(rows, len(cycle)))]
        else:
            for index, name in enumerate(block.columns):
                scale = 10.0 ** (index % 4 - 1)
                values[name] = [math.nan if i % 5 == 3 else (i - 2) * scale for i in range(rows)]
    length = max(len(column) for column in values.values())
    return {name: (column * length)[:length] for name, column in values.items()}


class TabularClassifier(PythonModel):
    """Preprocessing and network in one model: feature columns in, positive-class probability and
    0/1 prediction out."""

    def load_context(self, context: PythonModelContext) -> None:
        with open(context.artifacts["config"], encoding="utf-8") as handle:
            self.config = json.load(handle)
        path = context.artifacts["preprocessor"]
        untrusted = skops.io.get_untrusted_types(file=path)
        unexpected = sorted(set(untrusted) - ALLOWED_SKOPS_TYPES)
        if unexpected:
            raise ValueError(f"preprocessor artifact holds unexpected types {unexpected}; refusing to load")
        self.preprocessor = skops.io.load(path, trusted=untrusted)
        self.network = torch.export.load(context.artifacts["network"]).module()
        self.columns = list(self.config["numeric"]) + list(self.config["categorical"])
        self.threshold = float(self.config["decision_threshold"])
        self.calibration = _calibration(self.config.get("calibration"))
        self.vector_preprocessor: VectorPreprocessor | None = None
        self.vector_problem: str | None = None
        try:
            self.vector_preprocessor = self._checked_vector_preprocessor()
        except UnsupportedPreprocessor as exc:
            self.vector_problem = str(exc)
            log.warning("preprocessor: %s; scoring through the ColumnTransformer (~10 ms more per call)", exc)
        self._warm_up()

    def _checked_vector_preprocessor(self) -> VectorPreprocessor:
        """The vectorised transform, after checking it equals the ColumnTransformer on probe rows."""
        vector = VectorPreprocessor(self.preprocessor, self.config["categorical"])
        if sorted(vector.columns) != sorted(self.columns):
            raise UnsupportedPreprocessor(
                f"the preprocessor reads columns {vector.columns}, the config lists {self.columns}"
            )
        probe = probe_columns(vector)
        rows = len(next(iter(probe.values())))
        expected = self._transform_with_column_transformer(probe, rows)
        if not np.array_equal(vector.transform(probe, rows), expected, equal_nan=True):
            raise UnsupportedPreprocessor(
                "the vectorised transform differs from the ColumnTransformer on probe rows"
            )
        return vector

    def _warm_up(self) -> None:
        """Score one row at load: the first call of an exported program pays one-off set-up costs."""
        if self.vector_preprocessor is not None:
            probe = probe_columns(self.vector_preprocessor)
            self.score_columns({name: column[:1] for name, column in probe.items()})

    def _transform_with_column_transformer(self, values: Mapping[str, Any], rows: int) -> np.ndarray:
        """The reference (and fallback) path: a DataFrame through the fitted ColumnTransformer."""
        categorical = set(self.config["categorical"])
        frame = pd.DataFrame(
            {
                name: _text_series(values[name])
                if name in categorical
                else pd.Series(np.asarray(values[name], dtype=np.float64))
                for name in self.columns
            }
        )
        return np.asarray(self.preprocessor.transform(frame), dtype=np.float32)

    def score_columns(self, values: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Probability (float64) and 0/1 prediction (int64) per row, from one array per feature column.

        Numeric columns hold numbers (NaN = missing); categorical columns hold text (None = missing,
        other values are compared as their text). No pandas on the vectorised path.
        """
        missing = [c for c in self.columns if c not in values]
        if missing:
            raise ValueError(f"input is missing feature columns {missing}")
        lengths = {name: len(values[name]) for name in self.columns}
        rows = lengths[self.columns[0]]
        if rows == 0 or any(length != rows for length in lengths.values()):
            raise ValueError(f"every feature column needs the same, non-zero number of rows, got {lengths}")
        if self.vector_preprocessor is not None:
            matrix = self.vector_preprocessor.transform(values, rows)
        else:
            matrix = self._transform_with_column_transformer(values, rows)
        with torch.inference_mode():
            logits = self.network(torch.from_numpy(matrix))
            if self.calibration is None:  # exactly what models scored before calibration existed
                probability = torch.sigmoid(logits).numpy().astype(np.float64)
            else:
                slope, intercept = self.calibration
                probability = torch.sigmoid(logits.to(torch.float64) * slope + intercept).numpy()
        return probability, (probability >= self.threshold).astype(np.int64)

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"input is missing feature columns {missing}")
        categorical = set(self.config["categorical"])
        values = {
            name: _text_array(frame[name])
            if name in categorical
            else frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
            for name in self.columns
        }
        probability, prediction = self.score_columns(values)
        return pd.DataFrame({PROBABILITY: probability, PREDICTION: prediction})


def _calibration(config: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """(slope, intercept) applied to the logit; None for the plain sigmoid (no or "none" calibration)."""
    if not config:
        return None
    method = config.get("method", "none")
    if method not in CALIBRATION_METHODS:
        raise ValueError(
            f"model config names calibration method {method!r}; this model code knows "
            f"{sorted(CALIBRATION_METHODS)}"
        )
    if method == "none":
        return None
    slope, intercept = float(config["slope"]), float(config["intercept"])
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise ValueError(f"model config has a non-finite calibration {config}")
    return slope, intercept


def _text_series(values: Sequence[Any]) -> pd.Series:
    """Categorical values as the ColumnTransformer was fitted on them: text, missing as NaN."""
    keys = [_category_key(value) for value in values]
    return pd.Series([np.nan if key is None else key for key in keys], dtype=object)


def _text_array(values: pd.Series) -> np.ndarray:
    """A categorical column as text, missing values (None, NaN, pd.NA) as None, as training saw them."""
    text = values.astype(str).to_numpy(dtype=object)
    text[values.isna().to_numpy()] = None
    return text


mlflow.models.set_model(TabularClassifier())
