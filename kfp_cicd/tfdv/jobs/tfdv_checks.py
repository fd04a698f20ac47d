"""Schema, anomalies and drift with TFDV: what the job checks the statistics against.

* The schema is the given text-format one or is inferred from the training statistics (with
  observed numeric ranges and category domains, see ``tfdv_contract``); either
  way it gets the environments ``TRAINING`` (the label is required) and ``SERVING`` (the label
  is absent), so serving data validates against the same schema.
* Every anomaly becomes a record with the feature, TFDV's kind, TFDV's description and a plain
  sentence saying what the kind means (:data:`EXPLANATIONS`).
* Drift: the training statistics are compared with a baseline (the previous span, or the
  statistics the champion was trained on): L-infinity distance for categorical features,
  Jensen-Shannon divergence for numeric ones, each against its threshold. Every compared feature
  gets a measurement; those past their threshold are also anomalies.

Runs in the validation environment only (imports TFDV).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfdv_inputs import InputError

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

TRAINING, SERVING = "TRAINING", "SERVING"
L_INFINITY, JENSEN_SHANNON = "L_INFINITY", "JENSEN_SHANNON_DIVERGENCE"

#: What each anomaly kind relevant to tabular data means, in one plain sentence.
EXPLANATIONS: dict[str, str] = {
    "SCHEMA_MISSING_COLUMN": "a column the schema requires is missing from the data",
    "SCHEMA_NEW_COLUMN": "the data has a column the schema does not know",
    "SCHEMA_TRAINING_SERVING_SKEW": "the feature is present in one environment but not the other",
    "UNEXPECTED_DATA_TYPE": "the column's values have a different type than the schema says "
    "(e.g. text in a numeric column)",
    "ENUM_TYPE_UNEXPECTED_STRING_VALUES": "the column has categories outside the schema's domain",
    "ENUM_TYPE_BYTES_NOT_STRING": "the categorical column holds bytes that are not text",
    "ENUM_TYPE_INVALID_UTF8": "the categorical column holds invalid UTF-8",
    "ENUM_TYPE_FLOAT_NOT_STRING": "the categorical column holds floats, the schema expects text",
    "ENUM_TYPE_INT_NOT_STRING": "the categorical column holds integers, the schema expects text",
    "FEATURE_TYPE_LOW_FRACTION_PRESENT": "too many rows have no value (nulls) in this column",
    "FEATURE_TYPE_LOW_NUMBER_PRESENT": "too few rows have a value in this column",
    "FEATURE_TYPE_NOT_PRESENT": "no row has a value in this column",
    "FEATURE_TYPE_NO_VALUES": "the column has no values at all",
    "FEATURE_TYPE_LOW_NUMBER_VALUES": "rows have fewer values in this column than required",
    "FEATURE_TYPE_HIGH_NUMBER_VALUES": "rows have more values in this column than allowed",
    "FEATURE_TYPE_UNEXPECTED_REPEATED": "the column holds lists where single values are expected",
    "FEATURE_TYPE_HIGH_UNIQUE": "the column has more distinct values than allowed",
    "FEATURE_TYPE_LOW_UNIQUE": "the column has fewer distinct values than required",
    "FEATURE_TYPE_NO_UNIQUE": "the column's distinct values are not counted",
    "FLOAT_TYPE_BIG_FLOAT": "values are above the schema's maximum",
    "FLOAT_TYPE_SMALL_FLOAT": "values are below the schema's minimum (e.g. a negative amount)",
    "FLOAT_TYPE_NOT_FLOAT": "the column should hold floats but does not",
    "FLOAT_TYPE_STRING_NOT_FLOAT": "text that cannot be parsed as a number in a float column",
    "FLOAT_TYPE_NON_STRING": "a float column stored as text holds non-text values",
    "FLOAT_TYPE_UNKNOWN_TYPE_NUMBER": "the float column's values are of an unknown type",
    "FLOAT_TYPE_HAS_NAN": "the float column holds NaN values the schema disallows",
    "FLOAT_TYPE_HAS_INF": "the float column holds infinite values the schema disallows",
    "INT_TYPE_BIG_INT": "values are above the schema's maximum",
    "INT_TYPE_SMALL_INT": "values are below the schema's minimum",
    "INT_TYPE_INT_EXPECTED": "an integer column holds non-integer values",
    "INT_TYPE_NOT_INT_STRING": "text that is not an integer in an integer column",
    "INT_TYPE_NOT_STRING": "an integer column stored as text holds non-text values",
    "INT_TYPE_STRING_EXPECTED": "the column should hold integers written as text",
    "INT_TYPE_UNKNOWN_TYPE_NUMBER": "the integer column's values are of an unknown type",
    "BOOL_TYPE_BIG_INT": "a boolean column holds integers above 1",
    "BOOL_TYPE_SMALL_INT": "a boolean column holds integers below 0",
    "BOOL_TYPE_BYTES_NOT_INT": "a boolean column holds bytes where 0/1 integers are expected",
    "BOOL_TYPE_BYTES_NOT_STRING": "a boolean column holds bytes where text is expected",
    "BOOL_TYPE_FLOAT_NOT_INT": "a boolean column holds floats where 0/1 integers are expected",
    "BOOL_TYPE_FLOAT_NOT_STRING": "a boolean column holds floats where text is expected",
    "BOOL_TYPE_INT_NOT_STRING": "a boolean column holds integers where text is expected",
    "BOOL_TYPE_STRING_NOT_INT": "a boolean column holds text where 0/1 integers are expected",
    "BOOL_TYPE_UNEXPECTED_STRING": "a boolean column holds text other than true/false",
    "BOOL_TYPE_UNEXPECTED_FLOAT": "a boolean column holds floats other than 0/1",
    "STRING_TYPE_NOW_FLOAT": "a text column now holds only numbers (floats)",
    "STRING_TYPE_NOW_INT": "a text column now holds only numbers (integers)",
    "COMPARATOR_L_INFTY_HIGH": "the category frequencies drifted from the baseline past the "
    "L-infinity threshold",
    "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH": "the value distribution drifted from the baseline "
    "past the Jensen-Shannon divergence threshold",
    "COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH": "the feature's counts differ from the "
    "baseline past the threshold",
    "COMPARATOR_CONTROL_DATA_MISSING": "the baseline statistics lack this feature",
    "COMPARATOR_TREATMENT_DATA_MISSING": "the new statistics lack this feature",
    "COMPARATOR_LOW_NUM_EXAMPLES": "the data has too few rows compared with the baseline",
    "COMPARATOR_HIGH_NUM_EXAMPLES": "the data has too many rows compared with the baseline",
    "DATASET_LOW_NUM_EXAMPLES": "the data set has fewer rows than the schema requires",
    "DATASET_HIGH_NUM_EXAMPLES": "the data set has more rows than the schema allows",
    "NO_DATA_IN_SPAN": "the data set has no rows",
    "DOMAIN_INVALID_FOR_TYPE": "the schema gives this feature a domain that does not fit its type",
    "INVALID_SCHEMA_SPECIFICATION": "the schema itself is invalid for this feature",
    "INVALID_DOMAIN_SPECIFICATION": "the schema's domain for this feature is invalid",
    "FEATURE_MISSING_NAME": "a schema feature has no name",
    "FEATURE_MISSING_TYPE": "a schema feature has no type",
    "STATS_NOT_AVAILABLE": "the statistics needed for this check are missing",
}


# --- schema ----------------------------------------------------------------------------------


def load_or_infer_schema(
    schema_path: str | None, train_stats: statistics_pb2.DatasetFeatureStatisticsList, label: str
) -> schema_pb2.Schema:
    """The given text-format schema, or one inferred from the training statistics with observed
    ranges and category domains (``tfdv_contract.infer_reference_schema``: the stored form); with
    the TRAINING/SERVING environments added (see :func:`add_environments`)."""
    from tfdv_contract import infer_reference_schema

    schema = infer_reference_schema(train_stats) if not schema_path else load_schema(schema_path)
    add_environments(schema, label)
    return schema


def load_schema(schema_path: str) -> schema_pb2.Schema:
    """A text-format TFDV schema, or InputError naming the file."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    path = Path(schema_path)
    if not path.is_file():
        raise InputError(
            f"schema {schema_path} does not exist. Pass an existing schema .pbtxt, or "
            "an empty schema_path to infer one from the training data."
        )
    try:
        return text_format.Parse(path.read_text(encoding="utf-8"), schema_pb2.Schema())
    except (OSError, UnicodeDecodeError, text_format.ParseError) as error:
        raise InputError(f"schema {path} is not a text-format TFDV Schema: {error}") from error


def add_environments(schema: schema_pb2.Schema, label: str) -> None:
    """Give ``schema`` the TRAINING and SERVING environments, the label only in TRAINING.

    A schema that already declares environments is left as its author wrote it.
    """
    if schema.default_environment:
        return
    schema.default_environment.extend([TRAINING, SERVING])
    for feature in schema.feature:
        if feature.name == label and SERVING not in feature.not_in_environment:
            feature.not_in_environment.append(SERVING)


# --- drift ---------------------------------------------------------------------------------------


def configure_drift(
    schema: schema_pb2.Schema, thresholds: dict[str, float], default: float | None
) -> dict[str, tuple[str, float]]:
    """Set each feature's drift comparator; return ``{feature: (metric, threshold)}``.

    Categorical (BYTES) features get L-infinity, numeric ones Jensen-Shannon divergence. A
    feature's threshold is ``thresholds[name]``, else ``default``; ``None``/negative: unchecked.
    Float features are compared on their quantile histograms, integer ones on the equal-width
    histogram: on a heavy-tailed float (amounts, distances) the equal-width buckets put nearly
    every value in the first bucket, and two samples of one distribution already differ by
    0.15-0.3 there, against ~0.05 on quantiles.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    unknown = sorted(set(thresholds) - {feature.name for feature in schema.feature})
    if unknown:
        raise InputError(
            f"drift thresholds name features the schema does not have: "
            f"{', '.join(unknown)}. Use the schema's feature names."
        )
    configured = {}
    for feature in schema.feature:
        threshold = thresholds.get(feature.name, default)
        feature.ClearField("drift_comparator")
        if threshold is None or threshold < 0:
            continue
        if feature.type == schema_pb2.BYTES:
            feature.drift_comparator.infinity_norm.threshold = threshold
            configured[feature.name] = (L_INFINITY, threshold)
        else:
            divergence = feature.drift_comparator.jensen_shannon_divergence
            divergence.threshold = threshold
            if feature.type == schema_pb2.FLOAT:
                divergence.source.type = schema_pb2.HistogramSelection.QUANTILES
            configured[feature.name] = (JENSEN_SHANNON, threshold)
    return configured


def load_baseline(path_text: str, shown: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Baseline statistics: a binary DatasetFeatureStatisticsList file (``train_stats.pb``), or a
    statistics directory (a previous run's ``statistics`` artifact) holding ``train_stats.pb``."""
    import tensorflow_data_validation as tfdv
    from google.protobuf.message import DecodeError

    path = Path(path_text)
    if path.is_dir():
        path = path / "train_stats.pb"
    if not path.is_file():
        raise InputError(
            f"baseline statistics {shown} do not exist. Pass the train_stats.pb of a "
            "previous run (or its statistics directory), or an empty "
            "baseline_statistics to skip the drift check."
        )
    try:
        stats = tfdv.load_stats_binary(str(path))
    except (DecodeError, OSError, ValueError) as error:
        raise InputError(
            f"baseline statistics {shown} are not a binary DatasetFeatureStatisticsList "
            f"(tfdv.load_stats_binary): {error}"
        ) from error
    if not stats.datasets:
        raise InputError(f"baseline statistics {shown} hold no data set.")
    return stats


def drift_measurements(
    anomalies: anomalies_pb2.Anomalies, configured: dict[str, tuple[str, float]]
) -> list[dict[str, Any]]:
    """One ``{feature, metric, value, threshold, drifted}`` per feature compared with the baseline."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    by_type = {
        anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: L_INFINITY,
        anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: JENSEN_SHANNON,
    }
    values: dict[str, tuple[float, float]] = {}
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        for measurement in info.drift_measurements:
            if by_type.get(measurement.type) == configured.get(name, ("", 0))[0]:
                values[name] = (measurement.value, measurement.threshold)
    records = []
    for name, (metric, threshold) in sorted(configured.items()):
        value = values.get(name, (None, threshold))[0]
        records.append(
            {
                "feature": name,
                "metric": metric,
                "threshold": threshold,
                "value": value,
                "drifted": value is not None and value > threshold,
            }
        )
    return records


# --- anomalies ---------------------------------------------------------------------------------


def validate(
    stats: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    environment: str,
    baseline: statistics_pb2.DatasetFeatureStatisticsList | None = None,
) -> anomalies_pb2.Anomalies:
    """TFDV's anomalies of ``stats`` against ``schema`` in ``environment`` (and the baseline)."""
    import tensorflow_data_validation as tfdv

    return tfdv.validate_statistics(stats, schema, environment=environment, previous_statistics=baseline)


def anomaly_records(anomalies: anomalies_pb2.Anomalies, dataset: str) -> list[dict[str, str]]:
    """Flatten TFDV's Anomalies proto: one record per reason, per feature (and dataset-level)."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    type_name = anomalies_pb2.AnomalyInfo.Type.Name
    infos = sorted(anomalies.anomaly_info.items())
    if anomalies.HasField("dataset_anomaly_info"):
        infos.append(("", anomalies.dataset_anomaly_info))
    records = []
    for feature, info in infos:
        for reason in list(info.reason) or [None]:
            kind = type_name(reason.type) if reason else "UNKNOWN_TYPE"
            description = (reason.description if reason else info.description).strip()
            records.append(
                {
                    "dataset": dataset,
                    "feature": feature,
                    "kind": kind,
                    "short_description": (
                        reason.short_description if reason else info.short_description
                    ).strip(),
                    "description": description,
                    "explanation": EXPLANATIONS.get(kind, "TFDV reports a problem of this kind"),
                }
            )
    return records


def human_sentence(record: dict[str, str]) -> str:
    """``"In the training data, feature 'amount': values are below ... TFDV: ..."``."""
    where = f"feature '{record['feature']}'" if record["feature"] else "the data set as a whole"
    return (
        f"In the {record['dataset']} data, {where}: {record['explanation']}. "
        f"TFDV says: {record['description']}"
    )
