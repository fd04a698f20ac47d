"""The KServe predictor: serves the MLflow pyfunc classifier over the V1 and V2 inference protocols.

One model class answers both protocols KServe's ``ModelServer`` exposes:

- V1 (``POST /v1/models/<name>:predict``): ``{"instances": [{column: value, ...}, ...]}`` (or the same
  rows under ``"inputs"``) → ``{"predictions": [{"probability": p, "prediction": 0|1}, ...]}``.
- V2 / Open Inference Protocol (``POST /v2/models/<name>/infer``, REST or gRPC): one tensor per
  feature column (name = column, shape ``[n]``, datatype INT64 / FP64 / BYTES) → two output tensors,
  ``probability`` (FP64, ``[n]``) and ``prediction`` (INT64, ``[n]``).

Every request is checked against the model's MLflow signature *before* the model sees it, so a
client mistake (a missing or unknown column, a wrong type, ragged tensors, no rows) becomes a 400
naming the column instead of a 500 from deep inside pandas, and the server keeps serving.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput
from kserve.protocol.grpc.grpc_predict_v2_pb2 import ModelInferRequest
from kserve.utils.utils import generate_uuid

from kfp_cicd.errors import DeploymentError
from kfp_cicd.serving.metrics import PredictorMetrics, TrainingDomain

log = logging.getLogger(__name__)

PROBABILITY = "probability"
PREDICTION = "prediction"
V1_ROW_KEYS = ("instances", "inputs")

INTEGER, REAL, TEXT = "integer", "real", "text"
# MLflow signature type -> (kind of value, V2 datatype advertised in the model metadata).
SIGNATURE_TYPES: dict[str, tuple[str, str]] = {
    "long": (INTEGER, "INT64"),
    "integer": (INTEGER, "INT64"),
    "double": (REAL, "FP64"),
    "float": (REAL, "FP64"),
    "string": (TEXT, "BYTES"),
}
INTEGER_DATATYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
# V2 datatypes a client may send for each kind of column.
ACCEPTED_DATATYPES: dict[str, frozenset[str]] = {
    INTEGER: INTEGER_DATATYPES,
    REAL: INTEGER_DATATYPES | {"FP32", "FP64"},
    TEXT: frozenset({"BYTES"}),
}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PANDAS_DTYPES = {INTEGER: "int64", REAL: "float64", TEXT: object}
OUTPUT_TYPES = [
    {"name": PROBABILITY, "datatype": "FP64", "shape": [-1]},
    {"name": PREDICTION, "datatype": "INT64", "shape": [-1]},
]


@dataclass(frozen=True)
class Column:
    """One input column of the model: its name, the kind of value it holds and its V2 datatype."""

    name: str
    kind: str
    datatype: str

    def metadata(self) -> dict[str, Any]:
        """The V2 metadata tensor describing this column (any number of rows)."""
        return {"name": self.name, "datatype": self.datatype, "shape": [-1]}


def columns_from_signature(model: Any) -> list[Column]:
    """The model's input columns, typed from its MLflow signature.

    Models saved without a signature fall back to the feature lists in the model's config
    (numeric → FP64, categorical → BYTES), which is what the preprocessor expects anyway.
    """
    schema = model.metadata.get_input_schema()
    if schema is None:
        config = model.unwrap_python_model().config
        log.warning("model has no MLflow signature; typing inputs from its feature config")
        return [Column(name, REAL, "FP64") for name in config["numeric"]] + [
            Column(name, TEXT, "BYTES") for name in config["categorical"]
        ]
    if not schema.has_input_names():
        raise DeploymentError(
            "the model's MLflow signature has unnamed inputs; this predictor needs one "
            "named column per feature (save the model with kfp_cicd.model.packaging)"
        )
    columns = []
    for spec in schema.inputs:
        type_name = getattr(spec.type, "name", str(spec.type))
        if type_name not in SIGNATURE_TYPES:
            raise DeploymentError(
                f"input column {spec.name!r} has signature type {type_name!r}; the "
                f"predictor serves only {sorted(SIGNATURE_TYPES)} columns"
            )
        kind, datatype = SIGNATURE_TYPES[type_name]
        columns.append(Column(spec.name, kind, datatype))
    return columns


def _describe(value: Any) -> str:
    """A short rendering of an offending value for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_value(column: Column, value: Any, where: str, *, strict_integers: bool) -> Any:
    """``value`` as the Python type of ``column``'s kind, or InvalidInput naming column and place.

    ``strict_integers`` refuses integral floats (``3.0``) in integer columns: V2 tensors declare
    their datatype, while V1 JSON cannot tell ``3`` from ``3.0`` for every client.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        raise InvalidInput(f"column {column.name!r} has no value {where}; every feature needs a value")
    if column.kind == TEXT:
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"column {column.name!r} {where}: bytes are not UTF-8 text") from exc
        if isinstance(value, str):
            return value
        raise InvalidInput(f"column {column.name!r} expects a string, got {_describe(value)} {where}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        expected = "an integer" if column.kind == INTEGER else "a number"
        raise InvalidInput(f"column {column.name!r} expects {expected}, got {_describe(value)} {where}")
    if not math.isfinite(value):
        raise InvalidInput(f"column {column.name!r} expects a finite number, got {value!r} {where}")
    if column.kind == INTEGER:
        if isinstance(value, float) and (strict_integers or not value.is_integer()):
            raise InvalidInput(f"column {column.name!r} expects an integer, got {value!r} {where}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidInput(f"column {column.name!r}: {value!r} {where} does not fit in a 64-bit integer")
        return int(value)
    return float(value)


def _frame(columns: Sequence[Column], values: Mapping[str, Any]) -> pd.DataFrame:
    """A frame with the model's columns in signature order and dtypes the signature accepts."""
    return pd.DataFrame({c.name: pd.Series(values[c.name], dtype=PANDAS_DTYPES[c.kind]) for c in columns})


# Column values: float64 (real) or int64 (integer) arrays, or a list of str (text).
ColumnValues = np.ndarray | list[str]
# The Python types a whole column may hold to be taken as is, and the numpy kinds an array may have.
_PLAIN_TYPES: dict[str, frozenset[type]] = {
    INTEGER: frozenset({int}),
    REAL: frozenset({int, float}),
    TEXT: frozenset({str}),
}
_ARRAY_KINDS: dict[str, str] = {INTEGER: "iu", REAL: "iuf", TEXT: "U"}
_ARRAY_DTYPES: dict[str, type] = {INTEGER: np.int64, REAL: np.float64}


def _plain_column(column: Column, values: Sequence[Any] | np.ndarray) -> ColumnValues | None:
    """``values`` converted in one numpy step when they are plainly valid, else None.

    Plainly valid: every value already has the column's Python type (or the array its numpy kind),
    integers fit in 64 bits and numbers are finite. Anything else returns None so the caller checks
    value by value and names the offending one.
    """
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in _ARRAY_KINDS[column.kind]:
            return None
        if column.kind == TEXT:
            return values.tolist()
        if column.kind == INTEGER and values.dtype.kind == "u" and values.size and values.max() > INT64_MAX:
            return None
        array = values.astype(_ARRAY_DTYPES[column.kind])
    else:
        if not set(map(type, values)) <= _PLAIN_TYPES[column.kind]:
            return None
        if column.kind == TEXT:
            return list(values)
        try:
            array = np.array(values, dtype=_ARRAY_DTYPES[column.kind])
        except OverflowError:
            return None
    if column.kind == REAL and not np.isfinite(array).all():
        return None
    return array


def _column_values(
    column: Column, values: Sequence[Any] | np.ndarray, where: str, *, strict_integers: bool
) -> ColumnValues:
    """One column's values checked as a whole: an array for numbers, a list of str for text.

    The common case (every value of the right type) takes one numpy pass; otherwise each value goes
    through :func:`_check_value`, which raises InvalidInput naming the first bad one and where it is
    (``where`` formats the index, e.g. ``"in row {}"``).
    """
    plain = _plain_column(column, values)
    if plain is not None:
        return plain
    checked = [
        _check_value(column, value, where.format(index), strict_integers=strict_integers)
        for index, value in enumerate(values)
    ]
    return checked if column.kind == TEXT else np.array(checked, dtype=_ARRAY_DTYPES[column.kind])


def _name_problems(columns: Sequence[Column], given: Iterable[str], where: str) -> None:
    """InvalidInput listing missing and unknown columns (both at once, so one retry fixes them)."""
    given = list(given)
    expected = [c.name for c in columns]
    missing = [name for name in expected if name not in given]
    unknown = [name for name in given if name not in expected]
    problems = []
    if missing:
        problems.append(f"missing column(s) {missing}")
    if unknown:
        problems.append(f"unknown column(s) {unknown}")
    if problems:
        raise InvalidInput(f"{where}: {'; '.join(problems)}; the model expects exactly {expected}")


def columns_from_instances(payload: Any, columns: Sequence[Column]) -> dict[str, ColumnValues]:
    """Check a V1 body (``{"instances": [row, ...]}``, rows as objects); the values per column."""
    if not isinstance(payload, dict):
        raise InvalidInput('expected a JSON object {"instances": [{"column": value, ...}, ...]}')
    keys = [key for key in V1_ROW_KEYS if key in payload]
    if len(keys) != 1:
        raise InvalidInput(
            'expected exactly one of "instances" or "inputs" holding a list of rows, '
            f"got keys {sorted(payload)}"
        )
    rows = payload[keys[0]]
    if not isinstance(rows, list):
        raise InvalidInput(f'"{keys[0]}" must be a list of rows ({{"column": value}} objects)')
    if not rows:
        raise InvalidInput(f'"{keys[0]}" is empty: send at least one row')
    expected = {column.name for column in columns}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidInput(
                f"row {index} is {type(row).__name__}, expected an object "
                '{"column": value, ...} with one entry per feature column'
            )
        if row.keys() != expected:
            _name_problems(columns, row, f"row {index}")
    return {
        column.name: _column_values(
            column, [row[column.name] for row in rows], "in row {}", strict_integers=False
        )
        for column in columns
    }


def _tensor_length(name: str, shape: Any) -> int:
    """The row count a ``[n]`` or ``[n, 1]`` shape declares; refuses any other shape."""
    valid = (
        isinstance(shape, (list, tuple))
        and 1 <= len(shape) <= 2
        and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
        and (len(shape) == 1 or shape[1] == 1)
        and shape[0] >= 0
    )
    if not valid:
        raise InvalidInput(
            f"input {name!r} has shape {shape!r}; each feature tensor must have shape [n] (one value per row)"
        )
    return int(shape[0])


def _tensor_values(tensor: Any) -> list[Any] | np.ndarray:
    """The flat values of a V2 input tensor, from JSON data or from binary (raw) contents."""
    if getattr(tensor, "_raw_data", None) is not None:
        try:
            return tensor.as_numpy().reshape(-1)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                f"input {tensor.name!r}: binary data does not match shape "
                f"{list(tensor.shape)} and datatype {tensor.datatype}"
            ) from exc
    data = tensor.data
    if isinstance(data, np.ndarray):
        return data.reshape(-1)
    if not isinstance(data, list):
        raise InvalidInput(f"input {tensor.name!r} has no data list")
    if list not in set(map(type, data)):
        return data  # already flat: one value per row
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            if len(item) != 1:
                raise InvalidInput(
                    f"input {tensor.name!r} holds a nested list of length {len(item)}; send one value per row"
                )
            item = item[0]
        flat.append(item)
    return flat


def columns_from_tensors(request: InferRequest, columns: Sequence[Column]) -> dict[str, ColumnValues]:
    """Check a V2 request (one ``[n]`` tensor per column); the values per column."""
    names = [tensor.name for tensor in request.inputs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidInput(f"inputs {duplicates} are given more than once; send one tensor per column")
    _name_problems(columns, names, "inputs")
    tensors = {tensor.name: tensor for tensor in request.inputs}
    lengths: dict[str, int] = {}
    values: dict[str, ColumnValues] = {}
    for column in columns:
        tensor = tensors[column.name]
        if tensor.datatype not in ACCEPTED_DATATYPES[column.kind]:
            raise InvalidInput(
                f"input {column.name!r} has datatype {tensor.datatype}; the model expects "
                f"{column.datatype} (accepted: {sorted(ACCEPTED_DATATYPES[column.kind])})"
            )
        lengths[column.name] = _tensor_length(column.name, tensor.shape)
        flat = _tensor_values(tensor)
        if len(flat) != lengths[column.name]:
            raise InvalidInput(
                f"input {column.name!r} declares shape {list(tensor.shape)} but holds {len(flat)} values"
            )
        strict = tensor.datatype in INTEGER_DATATYPES
        values[column.name] = _column_values(column, flat, "at index {}", strict_integers=strict)
    first, rows = next(iter(lengths.items()))
    ragged = [name for name, count in lengths.items() if count != rows]
    if ragged:
        raise InvalidInput(
            f"ragged inputs: {first!r} has {rows} rows but {ragged[0]!r} has "
            f"{lengths[ragged[0]]}; every tensor needs one value per row"
        )
    if rows == 0:
        raise InvalidInput("the inputs hold no rows: send at least one value per column")
    return values


def check_scores(probabilities: np.ndarray) -> None:
    """InvalidInput naming the rows the model could not score (a NaN/inf probability).

    A finite but enormous value (``1e200`` in ``amount``) passes the type checks, then overflows the
    network; without this the client would get HTTP 200 with ``"probability": null``.
    """
    unscored = np.flatnonzero(~np.isfinite(np.asarray(probabilities, dtype=np.float64)))
    if unscored.size:
        raise InvalidInput(
            f"row(s) {unscored[:10].tolist()} could not be scored: a value is so far outside "
            "the training range that the model overflows; check the values' units and "
            "magnitude"
        )


def limit_scoring_threads() -> None:
    """One torch intra-op thread unless ``$OMP_NUM_THREADS`` says otherwise.

    The server scores one request at a time on its event loop, on batches of one to a few hundred
    rows: a parallel matmul that small costs more in thread hand-offs than it saves (and on a busy
    node the second thread waits for a core), so throughput comes from replicas, not threads.
    """
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


class PyfuncPredictor(Model):
    """KServe model wrapping an MLflow pyfunc classifier directory (see ``kfp_cicd.model.packaging``)."""

    def __init__(
        self, name: str, model_dir: str | Path, expected_digest: str | None = None, model_version: str = ""
    ) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.expected_digest = expected_digest or None
        self.metrics = PredictorMetrics(name, model_version)
        self.domain = TrainingDomain({}, {})
        self.model: Any = None
        self._python_model: Any = None
        self.columns: list[Column] = []

    def load(self) -> bool:
        """Verify the files, load the pyfunc model and its signature; DeploymentError saying what is wrong.

        The model's checksums (and the registry's digest, when given) are checked before any of its
        files is deserialised: a corrupted or swapped artifact never loads.
        """
        import mlflow.pyfunc

        from kfp_cicd.model.integrity import ModelIntegrityError, verify_model

        if not (self.model_dir / "MLmodel").is_file():
            raise DeploymentError(
                f"{self.model_dir} is not an MLflow model directory (no MLmodel file); "
                "point --model-dir at the model (KServe puts it at /mnt/models)"
            )
        try:
            digest = verify_model(self.model_dir, self.expected_digest)
        except ModelIntegrityError as exc:
            raise DeploymentError(f"refusing to serve {self.model_dir}: {exc}") from exc
        log.info("model files match their checksums (digest %s)", digest)
        try:
            self.model = mlflow.pyfunc.load_model(str(self.model_dir))
        except Exception as exc:  # the model's own code can fail in any way; name the directory
            raise DeploymentError(
                f"could not load the MLflow model at {self.model_dir}: {type(exc).__name__}: {exc}"
            ) from exc
        self.columns = columns_from_signature(self.model)
        # Requests are checked against the signature by this class (with 4xx errors naming the
        # column), so scoring calls the model's own code and skips MLflow's per-request schema
        # enforcement, which re-validates and copies a DataFrame.
        self._python_model = self.model.unwrap_python_model()
        self.domain = TrainingDomain.from_model(self._python_model)
        limit_scoring_threads()
        self.ready = True
        log.info(
            "loaded %s from %s with %d input columns; %s",
            self.name,
            self.model_dir,
            len(self.columns),
            self._scoring_path(),
        )
        return self.ready

    def _scoring_path(self) -> str:
        """How requests are scored, for the startup log (a slow path is worth a line in the log)."""
        if not hasattr(self._python_model, "score_columns"):
            return "scoring through a DataFrame (the model predates column scoring)"
        problem = getattr(self._python_model, "vector_problem", None)
        if problem:
            return f"scoring through the ColumnTransformer ({problem})"
        return "scoring column arrays with the vectorised preprocessor"

    def get_input_types(self) -> list[dict[str, Any]]:
        """V2 model metadata: one tensor per feature column, any number of rows."""
        return [column.metadata() for column in self.columns]

    def get_output_types(self) -> list[dict[str, Any]]:
        """V2 model metadata: the probability and the 0/1 prediction per row."""
        return [dict(output) for output in OUTPUT_TYPES]

    def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        """Score a V1 body (a dict) or a V2 request (InferRequest; gRPC requests are converted)."""
        protocol = (
            "v2-grpc"
            if isinstance(payload, ModelInferRequest)
            else ("v2" if isinstance(payload, InferRequest) else "v1")
        )
        with self.metrics.request(protocol):
            if isinstance(payload, ModelInferRequest):
                payload = InferRequest.from_grpc(payload)
            if isinstance(payload, InferRequest):
                return self._predict_v2(payload, protocol)
            if isinstance(payload, (bytes, str)):
                raise InvalidInput(
                    "the request body is not JSON; send Content-Type: application/json "
                    'with {"instances": [{"column": value, ...}, ...]}'
                )
            return self._predict_v1(payload)

    def _score(self, values: Mapping[str, ColumnValues], protocol: str) -> dict[str, np.ndarray]:
        """Run the model on checked column values: probability (float64) and prediction (int64) arrays.

        The inputs are already checked, so a failure here is the model's. Models saved before
        ``score_columns`` existed (an older registered version being rolled back to) get a DataFrame.
        """
        if hasattr(self._python_model, "score_columns"):
            probability, prediction = self._python_model.score_columns(values)
        else:
            result = pd.DataFrame(self._python_model.predict(None, _frame(self.columns, values)))
            probability = result[PROBABILITY].to_numpy(dtype=np.float64)
            prediction = result[PREDICTION].to_numpy(dtype=np.int64)
        check_scores(probability)
        self.metrics.scored(protocol, probability, self.domain.rows_outside(values, len(probability)))
        return {PROBABILITY: probability, PREDICTION: prediction}

    def _predict_v1(self, payload: Any) -> dict[str, Any]:
        scored = self._score(columns_from_instances(payload, self.columns), "v1")
        pairs = zip(scored[PROBABILITY].tolist(), scored[PREDICTION].tolist(), strict=True)
        return {"predictions": [{PROBABILITY: p, PREDICTION: y} for p, y in pairs]}

    def _predict_v2(self, request: InferRequest, protocol: str) -> InferResponse:
        arrays = self._score(columns_from_tensors(request, self.columns), protocol)
        outputs = []
        for spec in OUTPUT_TYPES:
            array = arrays[spec["name"]]
            output = InferOutput(name=spec["name"], shape=list(array.shape), datatype=spec["datatype"])
            output.set_data_from_numpy(array, binary_data=request.use_binary_outputs)
            outputs.append(output)
        return InferResponse(
            response_id=request.id or generate_uuid(),
            model_name=self.name,
            infer_outputs=outputs,
            use_binary_outputs=request.use_binary_outputs,
            requested_outputs=request.request_outputs,
        )
