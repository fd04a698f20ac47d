"""The data contract: a schema with observed ranges and category domains, and how it evolves.

* **Stored form** (:func:`infer_reference_schema`): TFDV's inferred schema (types, presence,
  category domains of low-cardinality string columns) plus, for every numeric feature, an
  ``int_domain``/``float_domain`` whose min/max are the observed min/max of the training
  statistics, tagged :data:`OBSERVED_RANGE_TAG` in ``feature.annotation.tag``. This is what a
  release stores as the reference for the next run. Ranges without the tag are hand-curated and
  are never widened or moved.
* **Working form** (:func:`working_schema`, never written out): observed ranges widened by
  ``range_tolerance`` x (max - min), a lower bound >= 0 kept >= 0, integer bounds rounded outward;
  every feature with a string domain and no ``distribution_constraints`` gets
  ``min_domain_mass = 1 - max_unknown_category_fraction``, so a few unknown categories are
  tolerated and more are an anomaly.
* **Evolution** (:func:`evolve_schema`): the reference schema changed to accept new data
  (categories unioned, observed ranges widened to cover the new data, new columns added as
  inferred, type changes take the new type, missing columns reported but kept), with one change
  record per difference.

Runs in the validation environment only (imports TFDV).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

#: ``feature.annotation.tag`` of a numeric range the job set from observed data (may be widened).
OBSERVED_RANGE_TAG = "kfp-cicd:observed-range"
DEFAULT_RANGE_TOLERANCE = 0.5
DEFAULT_MAX_UNKNOWN_CATEGORY_FRACTION = 0.01

#: The kinds of :func:`evolve_schema` change records.
CHANGE_KINDS = (
    "new_category",
    "range_widened",
    "new_column",
    "missing_column",
    "type_changed",
    "presence_relaxed",
)


# --- statistics helpers --------------------------------------------------------------------------


def feature_statistics(
    stats: statistics_pb2.DatasetFeatureStatisticsList,
) -> dict[str, statistics_pb2.FeatureNameStatistics]:
    """The first data set's features by name (``path.step`` joined with dots, or ``name``)."""
    if not stats.datasets:
        return {}
    return {".".join(f.path.step) or f.name: f for f in stats.datasets[0].features}


def observed_range(feature_stats: statistics_pb2.FeatureNameStatistics) -> tuple[float, float] | None:
    """``(min, max)`` of a numeric feature's values, ``None`` when it has no (finite) values."""
    if feature_stats.WhichOneof("stats") != "num_stats":
        return None
    numbers = feature_stats.num_stats
    if numbers.common_stats.num_non_missing == 0:
        return None
    low, high = float(numbers.min), float(numbers.max)
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    return low, high


def category_counts(feature_stats: statistics_pb2.FeatureNameStatistics) -> dict[str, float]:
    """Value -> count of a string feature: the rank histogram (up to 1,000 values), else top values."""
    if feature_stats.WhichOneof("stats") != "string_stats":
        return {}
    strings = feature_stats.string_stats
    buckets = strings.rank_histogram.buckets
    if buckets:
        return {bucket.label: float(bucket.sample_count) for bucket in buckets}
    return {value.value: float(value.frequency) for value in strings.top_values}


# --- the stored form -----------------------------------------------------------------------------


def infer_reference_schema(stats: statistics_pb2.DatasetFeatureStatisticsList) -> schema_pb2.Schema:
    """TFDV's inferred schema with observed ranges on every numeric feature (the stored form).

    TFDV gives string columns with at most 100 distinct values a string domain and 0/1 integer
    columns a ``bool_domain`` (kept: it already bounds them).
    """
    import tensorflow_data_validation as tfdv

    schema = tfdv.infer_schema(stats)
    add_observed_ranges(schema, stats)
    return schema


def add_observed_ranges(
    schema: schema_pb2.Schema,
    stats: statistics_pb2.DatasetFeatureStatisticsList,
    names: set[str] | None = None,
) -> None:
    """Give numeric features without a domain (or with an observed one) the observed min/max.

    Hand-curated ranges (no :data:`OBSERVED_RANGE_TAG`) and other domains (bool) are left alone.
    """
    by_name = feature_statistics(stats)
    for feature in schema.feature:
        if names is not None and feature.name not in names:
            continue
        if not _takes_observed_range(feature) or feature.name not in by_name:
            continue
        bounds = observed_range(by_name[feature.name])
        if bounds is not None:
            set_range(feature, *bounds)


def _takes_observed_range(feature: schema_pb2.Feature) -> bool:
    """A numeric feature with no domain yet, or with a range this job set before."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    if feature.type not in (schema_pb2.INT, schema_pb2.FLOAT):
        return False
    domain = feature.WhichOneof("domain_info")
    return domain is None or (
        domain in ("int_domain", "float_domain") and OBSERVED_RANGE_TAG in feature.annotation.tag
    )


def set_range(feature: schema_pb2.Feature, low: float | None, high: float | None) -> None:
    """Set the feature's range to ``[low, high]`` and tag it observed (see :func:`assign_range`)."""
    assign_range(feature, low, high)
    if OBSERVED_RANGE_TAG not in feature.annotation.tag:
        feature.annotation.tag.append(OBSERVED_RANGE_TAG)


def assign_range(feature: schema_pb2.Feature, low: float | None, high: float | None) -> None:
    """Set the feature's int/float domain bounds (``None``: leave that end), rounded outward:
    integers to whole numbers, floats to 32-bit floats (FloatDomain's type) that still hold them."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    if feature.type == schema_pb2.INT:
        if low is not None:
            feature.int_domain.min = math.floor(low)
        if high is not None:
            feature.int_domain.max = math.ceil(high)
        return
    if low is not None:
        feature.float_domain.min = _float32(low, down=True)
    if high is not None:
        feature.float_domain.max = _float32(high, down=False)


def _float32(value: float, *, down: bool) -> float:
    """``value`` as a 32-bit float, rounded down (or up) when it is not exactly representable."""
    import numpy as np

    rounded = np.float32(value)
    if down and float(rounded) > value:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    elif not down and float(rounded) < value:
        rounded = np.nextafter(rounded, np.float32(np.inf))
    return float(rounded)


def current_range(feature: schema_pb2.Feature) -> tuple[float | None, float | None]:
    """The feature's ``(min, max)`` from its int/float domain; ``None`` for an open end."""
    domain = feature.WhichOneof("domain_info")
    if domain not in ("int_domain", "float_domain"):
        return None, None
    bounds = getattr(feature, domain)
    return (
        bounds.min if bounds.HasField("min") else None,
        bounds.max if bounds.HasField("max") else None,
    )


def string_domain(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> Any:
    """The feature's StringDomain message (its own, or the schema-level one it names), or None."""
    domain = feature.WhichOneof("domain_info")
    if domain == "string_domain":
        return feature.string_domain
    if domain == "domain":
        return next((d for d in schema.string_domain if d.name == feature.domain), None)
    return None


# --- the working form ----------------------------------------------------------------------------


def working_schema(
    schema: schema_pb2.Schema,
    range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
    max_unknown_category_fraction: float = DEFAULT_MAX_UNKNOWN_CATEGORY_FRACTION,
) -> schema_pb2.Schema:
    """A copy of ``schema`` with the validation tolerances applied (see the module docstring)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    work = schema_pb2.Schema()
    work.CopyFrom(schema)
    for feature in work.feature:
        if OBSERVED_RANGE_TAG in feature.annotation.tag:
            widen_range(feature, range_tolerance)
        if string_domain(work, feature) is not None and not feature.HasField("distribution_constraints"):
            feature.distribution_constraints.min_domain_mass = 1.0 - max_unknown_category_fraction
    return work


def widen_range(feature: schema_pb2.Feature, tolerance: float) -> None:
    """Widen an observed range by ``tolerance`` x its width on each side.

    A lower bound >= 0 stays >= 0 (a never-negative feature stays non-negative); integer bounds
    are rounded outward. A single-valued range widens by ``tolerance`` x max(|value|, 1).
    """
    low, high = current_range(feature)
    if low is None or high is None:
        return
    span = (high - low) or max(abs(high), 1.0)
    new_low, new_high = low - tolerance * span, high + tolerance * span
    if low >= 0:
        new_low = max(new_low, 0.0)
    set_range(feature, new_low, new_high)


# --- evolution -----------------------------------------------------------------------------------


def evolve_schema(
    schema: schema_pb2.Schema, stats: statistics_pb2.DatasetFeatureStatisticsList
) -> tuple[schema_pb2.Schema, list[dict[str, Any]]]:
    """The reference ``schema`` changed to accept the data of ``stats``, and what changed.

    Each change is ``{feature, kind, detail, old, new}`` with ``kind`` in :data:`CHANGE_KINDS`.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    evolved = schema_pb2.Schema()
    evolved.CopyFrom(schema)
    inferred = infer_reference_schema(stats)
    inferred_features = {feature.name: feature for feature in inferred.feature}
    by_name = feature_statistics(stats)
    rows = int(stats.datasets[0].num_examples) if stats.datasets else 0
    changes: list[dict[str, Any]] = []
    for index, feature in enumerate(evolved.feature):
        if feature.name not in by_name or feature.name not in inferred_features:
            changes.append(_change(feature.name, "missing_column", "the new data lacks this column"))
            continue
        new = inferred_features[feature.name]
        if new.type != feature.type:
            old_type = schema_pb2.FeatureType.Name(feature.type)
            replacement = _adopt_feature(evolved, inferred, new, feature)
            evolved.feature[index].CopyFrom(replacement)
            changes.append(
                _change(
                    feature.name,
                    "type_changed",
                    f"the column's values are now {schema_pb2.FeatureType.Name(new.type)}, not {old_type}",
                    old_type,
                    schema_pb2.FeatureType.Name(new.type),
                )
            )
            continue
        changes += _widen_categories(evolved, feature, by_name[feature.name])
        changes += _widen_observed(feature, by_name[feature.name])
        changes += _relax_presence(feature, by_name[feature.name], rows)
    known = {feature.name for feature in evolved.feature}
    for name, new in inferred_features.items():
        if name in known:
            continue
        added = evolved.feature.add()
        added.CopyFrom(_adopt_feature(evolved, inferred, new, None))
        changes.append(
            _change(
                name,
                "new_column",
                f"a new {schema_pb2.FeatureType.Name(new.type)} column, added as inferred",
                None,
                _describe(inferred, new),
            )
        )
    return evolved, changes


def _change(feature: str, kind: str, detail: str, old: Any = None, new: Any = None) -> dict[str, Any]:
    return {"feature": feature, "kind": kind, "detail": detail, "old": old, "new": new}


def _adopt_feature(
    target: schema_pb2.Schema,
    inferred: schema_pb2.Schema,
    new: schema_pb2.Feature,
    old: schema_pb2.Feature | None,
) -> schema_pb2.Feature:
    """``new`` (inferred) ready to go into ``target``: its string domain copied over under a free
    name, the old feature's environments kept."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    feature = schema_pb2.Feature()
    feature.CopyFrom(new)
    if feature.WhichOneof("domain_info") == "domain":
        source = string_domain(inferred, new)
        taken = {d.name for d in target.string_domain}
        name = feature.name
        while name in taken:
            name += "_"
        if source is not None:
            copy = target.string_domain.add()
            copy.CopyFrom(source)
            copy.name = name
            feature.domain = name
    if old is not None:
        feature.not_in_environment[:] = list(old.not_in_environment)
        feature.in_environment[:] = list(old.in_environment)
    return feature


def _widen_categories(
    schema: schema_pb2.Schema, feature: schema_pb2.Feature, stats: statistics_pb2.FeatureNameStatistics
) -> list[dict[str, Any]]:
    domain = string_domain(schema, feature)
    if domain is None:
        return []
    counts = category_counts(stats)
    known = set(domain.value)
    added = sorted(value for value in counts if value not in known)
    if not added:
        return []
    old = sorted(known)
    domain.value.extend(added)
    total = sum(counts.values()) or 1.0
    share = sum(counts[value] for value in added) / total
    shown = ", ".join(added[:8]) + (f" (+{len(added) - 8} more)" if len(added) > 8 else "")
    return [
        _change(
            feature.name,
            "new_category",
            f"{len(added)} new categor{'y' if len(added) == 1 else 'ies'} ({share:.1%} of the "
            f"values): {shown}",
            old,
            added,
        )
    ]


def _widen_observed(
    feature: schema_pb2.Feature, stats: statistics_pb2.FeatureNameStatistics
) -> list[dict[str, Any]]:
    low, high = current_range(feature)
    bounds = observed_range(stats)
    if bounds is None or (low is None and high is None):
        return []
    new_low = bounds[0] if low is not None and bounds[0] < low else low
    new_high = bounds[1] if high is not None and bounds[1] > high else high
    if (new_low, new_high) == (low, high):
        return []
    curated = OBSERVED_RANGE_TAG not in feature.annotation.tag
    assign_range(feature, new_low, new_high)
    widened = current_range(feature)
    return [
        _change(
            feature.name,
            "range_widened",
            f"the {'hand-curated' if curated else 'observed'} range [{_num(low)}, {_num(high)}] "
            f"widened to [{_num(widened[0])}, {_num(widened[1])}] to cover the new data's "
            f"[{_num(bounds[0])}, {_num(bounds[1])}]",
            [low, high],
            list(widened),
        )
    ]


def _relax_presence(
    feature: schema_pb2.Feature, stats: statistics_pb2.FeatureNameStatistics, rows: int
) -> list[dict[str, Any]]:
    if not feature.presence.HasField("min_fraction") or rows == 0:
        return []
    kind = stats.WhichOneof("stats")
    common = getattr(stats, kind).common_stats if kind in ("num_stats", "string_stats") else None
    if common is None:
        return []
    present = common.num_non_missing / rows
    if present >= feature.presence.min_fraction:
        return []
    old = feature.presence.min_fraction
    feature.presence.min_fraction = math.floor(present * 1000) / 1000
    return [
        _change(
            feature.name,
            "presence_relaxed",
            f"only {present:.1%} of the rows have a value; the required fraction goes from "
            f"{old:g} to {feature.presence.min_fraction:g}",
            old,
            feature.presence.min_fraction,
        )
    ]


def _describe(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> str:
    """A short text for a feature's type and domain: ``"FLOAT [0, 12.5]"``, ``"BYTES {a, b}"``."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    text = schema_pb2.FeatureType.Name(feature.type)
    low, high = current_range(feature)
    if low is not None or high is not None:
        return f"{text} [{_num(low)}, {_num(high)}]"
    domain = string_domain(schema, feature)
    if domain is not None:
        values = list(domain.value)
        return f"{text} {{{', '.join(values[:8])}{', ...' if len(values) > 8 else ''}}}"
    return text


def _num(value: float | None) -> str:
    return "-inf/inf" if value is None else f"{value:.6g}"
