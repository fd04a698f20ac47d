"""The pages the KFP UI shows for a validation: HTML with TFDV's Facets view, Markdown tables.

Plain string building from the job's records; only :func:`statistics_html` imports TFDV (for
its Facets view). Runs in the validation environment.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import statistics_pb2


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


def statistics_html(
    stats: dict[str, statistics_pb2.DatasetFeatureStatisticsList],
    summary: dict[str, Any],
    records: list[dict[str, str]],
    drift: list[dict[str, Any]],
) -> str:
    """A standalone page: counts, anomalies, drift, then TFDV's Facets view of train vs eval.

    ``tfdv.get_statistics_html`` returns an iframe whose Facets scripts load from public CDNs;
    the tables above it stay readable where those cannot be reached.
    """
    import tensorflow_data_validation as tfdv

    names = list(stats)
    facets = (
        tfdv.get_statistics_html(stats[names[0]], stats[names[1]], lhs_name=names[0], rhs_name=names[1])
        if len(names) > 1
        else tfdv.get_statistics_html(stats[names[0]], lhs_name=names[0])
    )
    counts = "; ".join(f"{name} rows: {count}" for name, count in summary["row_counts"].items())
    drift_part = f"<h3>Drift against the baseline</h3>{drift_table_html(drift)}" if drift else ""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Data validation</title></head>"
        "<body style='font-family: sans-serif'><h2>Data validation</h2>"
        f"<p>{html.escape(counts)}; anomalies: {len(records)}; statistics computed "
        f"{html.escape(summary['processing'])}.</p>{anomaly_table_html(records)}{drift_part}"
        f"<h3>Statistics: {' vs '.join(names)}</h3>{facets}</body></html>\n"
    )


def summary_markdown(
    summary: dict[str, Any], records: list[dict[str, str]], drift: list[dict[str, Any]]
) -> str:
    """The Markdown summary the KFP UI renders: counts, anomaly table, drift verdict."""
    lines = ["# Data validation", "", "| data set | rows |", "| --- | ---: |"]
    lines += [f"| {name} | {count} |" for name, count in summary["row_counts"].items()]
    lines += [
        "",
        f"Statistics computed {summary['processing']}; schema "
        f"{'inferred from the training data' if summary['schema_inferred'] else 'given'}.",
        "",
    ]
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


def drift_html(drift: list[dict[str, Any]], baseline: str | None) -> str:
    """The drift report as a standalone HTML page."""
    body = (
        "<p>No baseline statistics were given, so drift was not checked.</p>"
        if baseline is None
        else f"<p>Baseline: <code>{html.escape(baseline)}</code></p>{drift_table_html(drift)}"
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Drift</title></head>"
        f"<body style='font-family: sans-serif'><h2>Drift against the baseline</h2>{body}"
        "</body></html>\n"
    )
