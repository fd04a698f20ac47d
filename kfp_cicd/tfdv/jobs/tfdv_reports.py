"""The pages the KFP UI shows for a validation: a self-contained HTML statistics view, Markdown.

Plain string building from the job's records and the statistics/schema protos (read by attribute,
nothing imported), so every page works offline: no network, no external script, style, font or
image (:func:`statistics_view_html`). Runs in the validation environment; importable anywhere.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2


def _cell(text: Any) -> str:
    """Text from the data (column names, values in TFDV's descriptions) for a Markdown page.

    HTML-escaped, because the KFP UI's Markdown viewer renders inline HTML (a column named
    ``<img src=x onerror=...>`` must stay text); pipes and newlines escaped for table cells.
    """
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def anomaly_table_html(records: list[dict[str, str]]) -> str:
    """The anomalies as an HTML table, or a line saying there are none."""
    if not records:
        return "<p>No anomalies: every data set matches the schema.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(r['dataset'])}</td><td>{html.escape(r['feature'] or '(data set)')}"
        f"</td><td>{html.escape(r['kind'])}</td><td>{html.escape(r['explanation'])}</td>"
        f"<td>{html.escape(r['description'])}</td></tr>"
        for r in records
    )
    return (
        "<table border='1' cellpadding='4'><tr><th>data set</th><th>feature</th><th>kind</th>"
        f"<th>meaning</th><th>TFDV's description</th></tr>{rows}</table>"
    )


def drift_table_html(drift: list[dict[str, Any]]) -> str:
    """Drift measurements as an HTML table."""
    rows = "".join(
        f"<tr style='background:{'#fdd' if d['drifted'] else 'none'}'>"
        f"<td>{html.escape(d['feature'])}</td><td>{d['metric']}</td><td>{_value(d['value'])}</td>"
        f"<td>{d['threshold']:g}</td><td>{'DRIFT' if d['drifted'] else 'ok'}</td></tr>"
        for d in drift
    )
    return (
        "<table border='1' cellpadding='4'><tr><th>feature</th><th>metric</th><th>value</th>"
        f"<th>threshold</th><th>status</th></tr>{rows}</table>"
    )


#: What the summary and the reports say when no reference was given and the schema was inferred.
FIRST_RELEASE_NOTE = (
    "First release: the schema was inferred from the training data (with observed ranges and "
    "category domains) and is stored with this release as the reference for the next run."
)

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:18px;
color:#1f2328;background:#fff;font-size:14px}
h1{font-size:20px;margin:0 0 8px}
h2{font-size:16px;margin:22px 0 6px;padding-bottom:3px;border-bottom:1px solid #d8dee4}
h3{font-size:14px;margin:0 0 4px;font-family:ui-monospace,Menlo,Consolas,monospace}
table{border-collapse:collapse;font-size:12.5px;margin:4px 0}
th,td{border:1px solid #d8dee4;padding:3px 7px;text-align:left;vertical-align:middle}
th{background:#f6f8fa;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.note{padding:8px 12px;background:#ddf4ff;border-left:4px solid #0969da;margin:8px 0}
.first{background:#fff8c5;border-left-color:#bf8700}
.good{padding:6px 10px;background:#dafbe1;border-left:4px solid #1a7f37}
tr.bad td{background:#ffebe9}
.alarm{border:2px solid #cf222e;border-left:8px solid #cf222e;border-radius:6px;padding:6px 10px;
background:#fff5f5}
.alarm h2{color:#cf222e;border:none;margin:2px 0 6px}
.warn{color:#cf222e;font-weight:600}
.ok{color:#1a7f37}
.feature{margin:10px 0;padding:8px 10px;border:1px solid #d8dee4;border-radius:6px}
.feature.flagged{border-color:#cf222e;border-left:6px solid #cf222e;background:#fffafa}
.meta{color:#57606a;font-size:12px;margin:2px 0 6px}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:11px;background:#eaeef2;
margin-left:6px;font-family:system-ui,sans-serif;font-weight:normal}
.badge.bad{background:#cf222e;color:#fff}
.unknown{color:#cf222e;font-weight:600}
.legend{color:#57606a;font-size:12px}
.swatch{display:inline-block;width:10px;height:10px;margin:0 3px 0 10px;vertical-align:middle}
svg{display:block}
"""
_COLORS = ("#0969da", "#e16f24", "#6e7781", "#8250df", "#1a7f37", "#bf3989")
_HIST_W, _HIST_H = 200, 34
_TOP_VALUES = 5
_NA = "&#8211;"  # an en dash: not applicable


def reference_note(reference_name: str, schema_inferred: bool) -> str:
    """The sentence saying what the data was validated against (plain text, not escaped)."""
    if reference_name:
        return (
            f"The data was validated against {reference_name}: its schema (observed ranges with "
            "the range tolerance, category domains) and its training statistics (drift)."
        )
    if schema_inferred:
        return FIRST_RELEASE_NOTE
    return "The data was validated against the given schema."


def statistics_html(
    stats: dict[str, statistics_pb2.DatasetFeatureStatisticsList],
    summary: dict[str, Any],
    records: list[dict[str, str]],
    drift: list[dict[str, Any]],
    schema: schema_pb2.Schema | None = None,
    note: str = "",
) -> str:
    """The statistics view of named data sets with a title made of their row counts.

    Kept for callers that have a ``{name: statistics}`` dict and a summary with ``row_counts``
    and ``processing``; see :func:`statistics_view_html`.
    """
    counts = "; ".join(f"{name} rows: {count}" for name, count in summary["row_counts"].items())
    title = f"Data validation ({counts}; statistics computed {summary.get('processing', '')})"
    return statistics_view_html(title, list(stats.items()), schema, records, drift, note)


def statistics_view_html(
    title: str,
    datasets: list[tuple[str, statistics_pb2.DatasetFeatureStatisticsList]],
    schema: schema_pb2.Schema | None,
    anomalies: list[dict[str, Any]],
    drift: list[dict[str, Any]],
    reference_note: str,
) -> str:
    """A self-contained HTML statistics view: no network, no script, no external style or font.

    Anomalies first (highlighted), then drift against the baseline, then one table per feature
    with a row per data set (e.g. train, eval, reference): rows with a value, missing %, distinct
    values, min/mean/max, the share of values outside the schema's range (approximate: from the
    equal-width histogram) or domain (unknown categories: from the rank histogram), and an inline
    SVG histogram or the top values. Features with an anomaly or drift are outlined in red.

    Args:
        title: the page's heading.
        datasets: ``(name, statistics)`` pairs, in the order the rows show them.
        schema: the schema the data was checked against (ranges, domains); ``None``: no schema.
        anomalies: ``{dataset, feature, kind, explanation, description}`` records.
        drift: ``{feature, metric, value, threshold, drifted}`` records.
        reference_note: what the data was validated against (plain text; escaped here).
    """
    rules = _schema_rules(schema)
    per_dataset = [(name, _features_of(stats), _rows_of(stats)) for name, stats in datasets]
    names = list(rules)
    for _, features, _ in per_dataset:
        names += [name for name in features if name not in names]
    by_feature_anomalies: dict[str, list[dict[str, Any]]] = {}
    for record in anomalies:
        by_feature_anomalies.setdefault(record.get("feature") or "", []).append(record)
    drift_by_feature = {d["feature"]: d for d in drift}
    note_class = "note first" if reference_note.startswith("First release") else "note"
    legend = "".join(
        f"<span class='swatch' style='background:{_COLORS[i % len(_COLORS)]}'></span>{_e(name)}"
        for i, (name, _, _) in enumerate(per_dataset)
    )
    parts = [
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='{note_class}'>{_e(reference_note)}</p>" if reference_note else "",
        (
            f"<div class='alarm'><h2>Anomalies ({len(anomalies)})</h2>{_anomaly_section(anomalies)}</div>"
            if anomalies
            else f"<h2>Anomalies (0)</h2>{_anomaly_section(anomalies)}"
        ),
        "<h2>Drift against the baseline</h2>",
        _drift_section(drift),
        "<h2>Features</h2>",
        f"<p class='legend'>Data sets:{legend}. <b>out of range</b> is approximate: the share of "
        "values outside the range the schema accepts (observed range plus tolerance, or a "
        "curated range), bounded by the buckets of the data set's quantiles and equal-width "
        "histograms that lie wholly or partly outside it. <b>unknown</b> is the share of "
        "values outside the schema's category domain, from the top 1,000 values.</p>",
    ]
    flagged = {name for name in by_feature_anomalies if name} | {
        d["feature"] for d in drift if d.get("drifted")
    }
    names = [name for name in names if name in flagged] + [name for name in names if name not in flagged]
    for name in names:
        parts.append(
            _feature_section(
                name,
                rules.get(name),
                per_dataset,
                by_feature_anomalies.get(name, []),
                drift_by_feature.get(name),
            )
        )
    parts.append("</body></html>\n")
    return "".join(parts)


# --- view helpers: plain attribute access on the protos, no imports ---------------------------


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float | None) -> str:
    if value is None:
        return _NA
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:.4g}"


def _pct(value: float | None, approx: bool = False) -> str:
    if value is None:
        return _NA
    text = "0%" if value == 0 else ("<0.1%" if value < 0.001 else f"{value:.1%}")
    return ("≈" + text) if approx and value else text


def _features_of(stats: Any) -> dict[str, Any]:
    if stats is None or not stats.datasets:
        return {}
    return {".".join(f.path.step) or f.name: f for f in stats.datasets[0].features}


def _rows_of(stats: Any) -> int:
    return int(stats.datasets[0].num_examples) if stats is not None and stats.datasets else 0


def _schema_rules(schema: Any) -> dict[str, dict[str, Any]]:
    """Per feature: type name, accepted range, category domain, tolerated unknown share."""
    if schema is None:
        return {}
    type_names = {0: "TYPE_UNKNOWN", 1: "BYTES", 2: "INT", 3: "FLOAT", 4: "STRUCT"}
    domains = {d.name: list(d.value) for d in schema.string_domain}
    rules: dict[str, dict[str, Any]] = {}
    for feature in schema.feature:
        which = feature.WhichOneof("domain_info")
        rule: dict[str, Any] = {"type": type_names.get(feature.type, str(feature.type))}
        if which in ("int_domain", "float_domain"):
            bounds = getattr(feature, which)
            rule["range"] = (
                bounds.min if bounds.HasField("min") else None,
                bounds.max if bounds.HasField("max") else None,
            )
            rule["observed"] = "kfp-cicd:observed-range" in feature.annotation.tag
        elif which == "bool_domain":
            rule["range"] = (0, 1)
        elif which in ("domain", "string_domain"):
            values = domains.get(feature.domain, []) if which == "domain" else feature.string_domain.value
            rule["domain"] = set(values)
            if feature.HasField("distribution_constraints"):
                rule["unknown_allowed"] = 1.0 - feature.distribution_constraints.min_domain_mass
            else:
                rule["unknown_allowed"] = 0.0
        rules[feature.name] = rule
    return rules


def _common(feature: Any) -> Any:
    kind = feature.WhichOneof("stats")
    if kind not in ("num_stats", "string_stats", "bytes_stats"):
        return None
    return getattr(feature, kind).common_stats


def _standard_histogram(feature: Any, kind: int = 0) -> list[tuple[float, float, float]]:
    """``[(low, high, count)]`` of a numeric feature's equal-width histogram (``kind`` 1: the
    quantiles histogram, equal-count buckets)."""
    if feature.WhichOneof("stats") != "num_stats":
        return []
    for histogram in feature.num_stats.histograms:
        if histogram.type == kind:  # Histogram.STANDARD = 0, QUANTILES = 1
            return [(b.low_value, b.high_value, b.sample_count) for b in histogram.buckets]
    return []


def _out_of_range_share(feature: Any, bounds: tuple[Any, Any]) -> tuple[float, float] | None:
    """``(at least, at most)``: the share of a numeric feature's values outside ``bounds``.

    Exactly 0 when its min and max are inside. Else each histogram (quantiles: equal-count
    buckets; standard: equal-width) bounds the share between its buckets wholly outside and
    those at least partly outside; the two intervals are intersected.
    """
    low, high = bounds
    numbers = feature.num_stats
    if (low is None or numbers.min >= low) and (high is None or numbers.max <= high):
        return 0.0, 0.0
    intervals = [
        interval
        for interval in (
            _outside_interval(_standard_histogram(feature, 1), bounds),
            _outside_interval(_standard_histogram(feature), bounds),
        )
        if interval is not None
    ]
    if not intervals:
        return None
    least, most = max(i[0] for i in intervals), min(i[1] for i in intervals)
    return (least, most) if least <= most else intervals[0]


def _outside_interval(
    buckets: list[tuple[float, float, float]], bounds: tuple[Any, Any]
) -> tuple[float, float] | None:
    """``(wholly, partly)``: the shares of a histogram's counts in buckets wholly outside
    ``bounds`` and in buckets at least partly outside them."""
    low, high = bounds
    total = sum(count for _, _, count in buckets)
    if not total or (low is None and high is None):
        return None
    wholly = partly = 0.0
    for a, b, count in buckets:
        if (low is not None and b < low) or (high is not None and a > high):
            wholly += count
        elif (low is not None and a < low) or (high is not None and b > high):
            partly += count
    return min(wholly / total, 1.0), min((wholly + partly) / total, 1.0)


def _histogram_svg(
    series: list[tuple[int, list[tuple[float, float, float]]]], bounds: tuple[Any, Any] | None
) -> dict[int, str]:
    """One small SVG per row, every row on the same x axis (``series``: (color index, buckets))."""
    lows = [a for _, buckets in series for a, _, _ in buckets]
    highs = [b for _, buckets in series for _, b, _ in buckets]
    if not lows:
        return {}
    x0, x1 = min(lows), max(highs)
    span = (x1 - x0) or 1.0
    svgs = {}
    for color, buckets in series:
        peak = max((count for _, _, count in buckets), default=0) or 1
        bars = "".join(
            f"<rect x='{(a - x0) / span * _HIST_W:.1f}' y='{_HIST_H - count / peak * _HIST_H:.1f}' "
            f"width='{max((b - a) / span * _HIST_W, 1.0):.1f}' height='{count / peak * _HIST_H:.1f}' "
            f"fill='{_COLORS[color % len(_COLORS)]}'/>"
            for a, b, count in buckets
        )
        lines = ""
        for edge in bounds or ():
            if edge is not None and x0 <= edge <= x1:
                x = (edge - x0) / span * _HIST_W
                lines += (
                    f"<line x1='{x:.1f}' x2='{x:.1f}' y1='0' y2='{_HIST_H}' stroke='#cf222e' "
                    "stroke-dasharray='3,2' stroke-width='1'/>"
                )
        svgs[color] = (
            f"<svg width='{_HIST_W}' height='{_HIST_H}' viewBox='0 0 {_HIST_W} {_HIST_H}' "
            f"role='img'><rect width='{_HIST_W}' height='{_HIST_H}' fill='#f6f8fa'/>{bars}{lines}"
            "</svg>"
        )
    return svgs


def _share_text(share: tuple[float, float] | None) -> str:
    """``"0%"``, ``"≈2.0% out of range"`` or ``"20.0&#8211;30.0% out of range"``."""
    if share is None:
        return _NA
    least, most = share
    if most == 0:
        return "0%"
    if most - least < 0.002:
        return f"{_pct((least + most) / 2, approx=True)} out of range"
    return f"{least * 100:.1f}&#8211;{most * 100:.1f}% out of range"


def _category_shares(feature: Any) -> tuple[dict[str, float], bool]:
    """Value -> count (rank histogram, else top values) and whether the list is complete."""
    if feature.WhichOneof("stats") != "string_stats":
        return {}, True
    strings = feature.string_stats
    buckets = strings.rank_histogram.buckets
    counts = (
        {b.label: float(b.sample_count) for b in buckets}
        if buckets
        else {v.value: float(v.frequency) for v in strings.top_values}
    )
    return counts, len(counts) >= strings.unique


def _feature_section(
    name: str,
    rule: dict[str, Any] | None,
    per_dataset: list[tuple[str, dict[str, Any], int]],
    anomalies: list[dict[str, Any]],
    drift: dict[str, Any] | None,
) -> str:
    rule = rule or {}
    flagged = bool(anomalies) or bool(drift and drift.get("drifted"))
    badges = "".join(
        f"<span class='badge bad'>{_e(kind)}</span>" for kind in sorted({a["kind"] for a in anomalies})
    )
    meta = [f"schema type {_e(rule['type'])}" if "type" in rule else "not in the schema"]
    if "range" in rule:
        low, high = rule["range"]
        meta.append(
            f"accepted range [{_num(low)}, {_num(high)}]"
            + (" (observed range + tolerance)" if rule.get("observed") else "")
        )
    if "domain" in rule:
        meta.append(
            f"domain of {len(rule['domain'])} categories, up to {_pct(rule['unknown_allowed'])} "
            "unknown tolerated"
        )
    if drift:
        value = "n/a" if drift["value"] is None else f"{drift['value']:.4f}"
        status = "<span class='warn'>DRIFT</span>" if drift["drifted"] else "<span class='ok'>ok</span>"
        metric = "L∞" if drift["metric"] == "L_INFINITY" else "Jensen-Shannon"
        meta.append(f"drift ({metric}) {value} vs threshold {drift['threshold']:g}: {status}")
    series = []
    for index, (_, features, _) in enumerate(per_dataset):
        if name in features:
            buckets = _standard_histogram(features[name])
            if buckets:
                series.append((index, buckets))
    svgs = _histogram_svg(series, rule.get("range")) if series else {}
    rows = []
    for index, (dataset, features, total) in enumerate(per_dataset):
        color = _COLORS[index % len(_COLORS)]
        swatch = f"<span class='swatch' style='background:{color};margin-left:0'></span>"
        if name not in features:
            rows.append(
                f"<tr class='bad'><td>{swatch}{_e(dataset)}</td><td colspan='9' class='warn'>"
                "column absent (or no values at all)</td></tr>"
            )
            continue
        rows.append(_dataset_row(features[name], total, rule, svgs.get(index, ""), f"{swatch}{_e(dataset)}"))
    return (
        f"<div class='feature{' flagged' if flagged else ''}' id='feature-{_e(name)}'>"
        f"<h3>{_e(name)}{badges}</h3><p class='meta'>{'; '.join(meta)}</p>"
        "<table><tr><th>data set</th><th>type</th><th>with a value</th><th>missing</th>"
        "<th>distinct</th><th>min</th><th>mean</th><th>max</th><th>out of range / unknown</th>"
        "<th>distribution</th></tr>" + "".join(rows) + "</table></div>"
    )


def _dataset_row(feature: Any, total: int, rule: dict[str, Any], svg: str, label: str) -> str:
    kind = feature.WhichOneof("stats")
    common = _common(feature)
    present = int(common.num_non_missing) if common is not None else 0
    missing = (total - present) / total if total else None
    cells = {"type": {"num_stats": "numeric", "string_stats": "text"}.get(kind, kind or "?")}
    bad = False
    if kind == "num_stats":
        numbers = feature.num_stats
        share = _out_of_range_share(feature, rule["range"]) if "range" in rule and present else None
        bad = bool(share and share[1])
        cells.update(
            distinct=_NA,
            min=_num(numbers.min) if present else _NA,
            mean=_num(numbers.mean) if present else _NA,
            max=_num(numbers.max) if present else _NA,
            share=_share_text(share),
            distribution=svg,
        )
    elif kind == "string_stats":
        counts, complete = _category_shares(feature)
        values = sum(counts.values()) or 1.0
        domain = rule.get("domain")
        unknown = None
        if domain is not None:
            unknown = sum(c for v, c in counts.items() if v not in domain) / values
            bad = unknown > rule.get("unknown_allowed", 0.0)
        top = sorted(counts.items(), key=lambda item: -item[1])[:_TOP_VALUES]
        shown = ", ".join(
            (f"<span class='unknown'>{_e(v)}</span>" if domain is not None and v not in domain else _e(v))
            + f" {c / values:.0%}"
            for v, c in top
        )
        more = len(counts) - len(top)
        cells.update(
            distinct=_num(feature.string_stats.unique),
            min=_NA,
            mean=_NA,
            max=_NA,
            share=(
                _NA
                if unknown is None
                else (("≥" if not complete and unknown else "") + _pct(unknown) + " unknown")
            ),
            distribution=shown + (f" (+{more} more)" if more > 0 else ""),
        )
    else:
        cells.update(distinct=_NA, min=_NA, mean=_NA, max=_NA, share=_NA, distribution="")
    missing_bad = bool(missing)
    return (
        f"<tr{' class=bad' if bad else ''}><td>{label}</td><td>{cells['type']}</td>"
        f"<td class='n'>{_num(present)}</td><td class='n{' warn' if missing_bad else ''}'>"
        f"{_pct(missing)}</td><td class='n'>{cells['distinct']}</td><td class='n'>{cells['min']}</td>"
        f"<td class='n'>{cells['mean']}</td><td class='n'>{cells['max']}</td>"
        f"<td class='n{' warn' if bad else ''}'>{cells['share']}</td><td>{cells['distribution']}</td></tr>"
    )


def _anomaly_section(records: list[dict[str, Any]]) -> str:
    if not records:
        return "<p class='good'>No anomalies: every data set matches the schema.</p>"
    rows = "".join(
        f"<tr class='bad'><td>{_e(r['dataset'])}</td><td><b>{_e(r['feature'] or '(data set)')}</b></td>"
        f"<td>{_e(r['kind'])}</td><td>{_e(r.get('explanation', ''))}</td>"
        f"<td>{_e(r.get('description', ''))}</td></tr>"
        for r in records
    )
    return (
        "<table><tr><th>data set</th><th>feature</th><th>kind</th><th>meaning</th>"
        f"<th>TFDV's description</th></tr>{rows}</table>"
    )


def _drift_section(drift: list[dict[str, Any]]) -> str:
    if not drift:
        return "<p>No baseline statistics were given, so drift was not checked.</p>"
    rows = []
    ranked = sorted(
        drift,
        key=lambda d: (not d["drifted"], -((d["value"] or 0.0) / (d["threshold"] or 1e-9)), d["feature"]),
    )
    for d in ranked:
        value = d["value"]
        scale = max(d["threshold"] * 2, value or 0.0, 1e-9)
        bar = (
            "<svg width='120' height='12' viewBox='0 0 120 12'><rect width='120' height='12' "
            "fill='#f6f8fa'/>"
            + (
                f"<rect width='{min(value / scale, 1.0) * 120:.1f}' height='12' "
                f"fill='{'#cf222e' if d['drifted'] else '#1a7f37'}'/>"
                if value is not None
                else ""
            )
            + f"<line x1='{d['threshold'] / scale * 120:.1f}' x2='{d['threshold'] / scale * 120:.1f}' "
            "y1='0' y2='12' stroke='#1f2328' stroke-width='1.5'/></svg>"
        )
        rows.append(
            f"<tr{' class=bad' if d['drifted'] else ''}><td>{_e(d['feature'])}</td><td>{_e(d['metric'])}</td>"
            f"<td class='n'>{_value(value)}</td><td class='n'>{d['threshold']:g}</td><td>{bar}</td>"
            f"<td>{'<span class=warn>DRIFT</span>' if d['drifted'] else '<span class=ok>ok</span>'}</td></tr>"
        )
    return (
        "<table><tr><th>feature</th><th>metric</th><th>value</th><th>threshold</th><th></th>"
        f"<th>status</th></tr>{''.join(rows)}</table>"
    )


def summary_markdown(
    summary: dict[str, Any], records: list[dict[str, str]], drift: list[dict[str, Any]]
) -> str:
    """The Markdown summary the KFP UI renders: counts, anomaly table, drift verdict."""
    lines = ["# Data validation", "", "| data set | rows |", "| --- | ---: |"]
    lines += [f"| {name} | {count} |" for name, count in summary["row_counts"].items()]
    note = reference_note(summary.get("reference_name") or "", bool(summary.get("schema_inferred")))
    lines += ["", f"Statistics computed {summary['processing']}.", "", _cell(note), ""]
    if records:
        lines += [
            f"## {len(records)} anomalies",
            "",
            "| data set | feature | kind | meaning |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {r['dataset']} | {_cell(r['feature'] or '(data set)')} | {_cell(r['kind'])} | "
            f"{_cell(r['explanation'])}: {_cell(r['description'])} |"
            for r in records
        ]
    else:
        lines.append("No anomalies: every data set matches the schema.")
    drifted = [_cell(d["feature"]) for d in drift if d["drifted"]]
    if drift:
        lines += [
            "",
            f"Drift: {len(drifted)} of {len(drift)} features past their threshold"
            + (f" ({', '.join(drifted)})." if drifted else "."),
        ]
    return "\n".join(lines) + "\n"


def drift_markdown(drift: list[dict[str, Any]], baseline: str | None) -> str:
    """The drift report in Markdown: one row per compared feature."""
    if baseline is None:
        return (
            "# Drift\n\nNo baseline statistics were given (baseline_statistics is empty), so "
            "drift was not checked.\n"
        )
    lines = [
        "# Drift against the baseline",
        "",
        f"Baseline: {_cell(baseline)}",
        "",
        "| feature | metric | value | threshold | status |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    lines += [
        f"| {_cell(d['feature'])} | {d['metric']} | {_value(d['value'])} | "
        f"{d['threshold']:g} | {'**DRIFT**' if d['drifted'] else 'ok'} |"
        for d in drift
    ]
    return "\n".join(lines) + "\n"


def drift_html(drift: list[dict[str, Any]], baseline: str | None, note: str = "") -> str:
    """The drift report as a self-contained HTML page (inline style only, nothing external)."""
    body = (
        "<p>No baseline statistics were given, so drift was not checked.</p>"
        if baseline is None
        else f"<p>Baseline: <code>{_e(baseline)}</code></p>{_drift_section(drift)}"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>Drift</title>"
        f"<style>{_CSS}</style></head><body><h1>Drift against the baseline</h1>"
        + (f"<p class='note'>{_e(note)}</p>" if note else "")
        + f"{body}</body></html>\n"
    )
