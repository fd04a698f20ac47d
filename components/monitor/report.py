"""The drift report of a monitoring run: the verdict first, then both comparisons of every feature.

Per feature: the skew of the window against the champion's training statistics and the drift
against the previous window, each with its threshold and whether it is past it. Plain string
building; the HTML pages are self-contained (no external resources).
"""

from __future__ import annotations

import html
from typing import Any

from kfp_cicd.components.monitor.decision import SKEW, WINDOW_DRIFT, RetrainingDecision

_TRIGGER_NAMES = {
    SKEW: "training-serving skew (window vs the champion's training statistics)",
    WINDOW_DRIFT: "drift (window vs the previous window)",
}


def _md(text: Any) -> str:
    """Text for a Markdown table cell; HTML-escaped (the KFP UI renders inline HTML)."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _status(value: float | None, past: bool, missing: str = "n/a") -> str:
    if value is None:
        return missing
    return "PAST" if past else "ok"


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Features past a threshold first, then by how close the skew is to its threshold."""

    def closeness(row: dict[str, Any]) -> float:
        scores = [v for v in (row["skew"], row["window_drift"]) if v is not None]
        return max(scores) / row["threshold"] if scores and row["threshold"] else 0.0

    return sorted(rows, key=lambda r: (not (r["skewed"] or r["window_drifted"]), -closeness(r), r["feature"]))


def triggered_by_text(decision: RetrainingDecision) -> str:
    """Which comparison(s) triggered the retraining, in words."""
    if decision.triggered_by:
        return " and ".join(_TRIGGER_NAMES.get(name, name) for name in decision.triggered_by)
    if decision.trigger == "no_champion":
        return "no champion yet"
    return "nothing: every compared feature is within its thresholds"


def _facts(decision: RetrainingDecision, rows: int, baseline_rows: int, previous_rows: int) -> list[str]:
    """Plain-text facts (escaped by the caller)."""
    facts = [
        f"model {decision.model_name}"
        + (f", champion version {decision.champion_version}" if decision.champion_version else ""),
        f"production window {decision.production_data}" + (f" ({rows} rows)" if rows else ""),
    ]
    if decision.baseline:
        facts.append(
            f"skew baseline: {decision.baseline}" + (f" ({baseline_rows} rows)" if baseline_rows else "")
        )
        facts.append(
            f"drift baseline: {decision.previous_window}"
            + (f" ({previous_rows} rows)" if previous_rows else "")
            if decision.previous_window
            else "drift baseline: none; no previous window was stored, this is the first checked window"
        )
        facts.append(f"triggered by: {triggered_by_text(decision)}")
    if decision.window_statistics:
        facts.append(f"this window's statistics, stored for the next check: {decision.window_statistics}")
    return facts


def drift_report_markdown(
    decision: RetrainingDecision,
    anomalies: list[dict[str, str]],
    rows: int = 0,
    baseline_rows: int = 0,
    previous_rows: int = 0,
) -> str:
    """Markdown: verdict, window and baselines, per-feature skew and drift, schema anomalies."""
    verdict = "RETRAIN" if decision.retrain else "NO RETRAINING"
    lines = [f"# Monitoring: {verdict}", "", _md(decision.reason), ""]
    lines += [f"- {_md(fact)}" for fact in _facts(decision, rows, baseline_rows, previous_rows)]
    if decision.comparisons:
        missing = "n/a" if decision.previous_window else "no previous window"
        lines += [
            "",
            "| feature | metric | threshold | skew vs training | status | drift vs previous window "
            "| status |",
            "| --- | --- | ---: | ---: | --- | ---: | --- |",
        ]
        lines += [
            f"| {_md(r['feature'])} | {r['metric']} | {r['threshold']:g} | {_value(r['skew'])} | "
            f"{_bold(_status(r['skew'], r['skewed']))} | "
            f"{_value(r['window_drift']) if decision.previous_window else '-'} | "
            f"{_bold(_status(r['window_drift'], r['window_drifted'], missing))} |"
            for r in _sorted(decision.comparisons)
        ]
    if anomalies:
        lines += [
            "",
            f"## {len(anomalies)} schema anomalies in the window",
            "",
            "| feature | kind | meaning |",
            "| --- | --- | --- |",
        ]
        lines += [
            f"| {_md(a['feature'] or '(data set)')} | {_md(a['kind'])} | {_md(a['explanation'])}: "
            f"{_md(a['description'])} |"
            for a in anomalies
        ]
    return "\n".join(lines) + "\n"


def _bold(status: str) -> str:
    return f"**{status}**" if status == "PAST" else status


def drift_report_html(
    decision: RetrainingDecision,
    anomalies: list[dict[str, str]],
    rows: int = 0,
    baseline_rows: int = 0,
    previous_rows: int = 0,
) -> str:
    """The same report as a standalone HTML page (no external resources)."""
    verdict = "RETRAIN" if decision.retrain else "NO RETRAINING"
    colour = "#c00" if decision.retrain else "#070"
    past = "background:#fdd"
    table = "".join(
        f"<tr><td>{html.escape(r['feature'])}</td><td>{r['metric']}</td><td>{r['threshold']:g}</td>"
        f"<td style='{past if r['skewed'] else ''}'>{_value(r['skew'])} "
        f"({_status(r['skew'], r['skewed'])})</td>"
        f"<td style='{past if r['window_drifted'] else ''}'>"
        + (
            f"{_value(r['window_drift'])} ({_status(r['window_drift'], r['window_drifted'])})"
            if decision.previous_window
            else "no previous window"
        )
        + "</td></tr>"
        for r in _sorted(decision.comparisons)
    )
    anomaly_rows = "".join(
        f"<tr><td>{html.escape(a['feature'] or '(data set)')}</td><td>{html.escape(a['kind'])}</td>"
        f"<td>{html.escape(a['explanation'])}: {html.escape(a['description'])}</td></tr>"
        for a in anomalies
    )
    facts = "".join(
        f"<li>{html.escape(fact)}</li>" for fact in _facts(decision, rows, baseline_rows, previous_rows)
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Monitoring</title></head>"
        f"<body style='font-family: sans-serif'><h2 style='color:{colour}'>Monitoring: {verdict}</h2>"
        f"<p>{html.escape(decision.reason)}</p><ul>{facts}</ul>"
        + (_COMPARISON_TABLE.format(rows=table) if decision.comparisons else "")
        + (_ANOMALY_TABLE.format(count=len(anomalies), rows=anomaly_rows) if anomalies else "")
        + "</body></html>\n"
    )


def no_champion_view(decision: RetrainingDecision) -> str:
    """The statistics view of a run without a champion: nothing was compared."""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Monitoring statistics</title></head>"
        "<body style='font-family: sans-serif'><p>"
        + html.escape(
            f"{decision.model_name} has no champion yet: no training statistics to compare "
            f"{decision.production_data} with, so no statistics were computed."
        )
        + "</p></body></html>\n"
    )


_COMPARISON_TABLE = (
    "<h3>Per feature: skew against the training statistics, drift against the previous window</h3>"
    "<p>A value past its threshold (shaded) is a reason to retrain.</p>"
    "<table border='1' cellpadding='4'><tr><th>feature</th><th>metric</th><th>threshold</th>"
    "<th>skew vs training</th><th>drift vs previous window</th></tr>{rows}</table>"
)
_ANOMALY_TABLE = (
    "<h3>{count} schema anomalies in the window</h3><table border='1' cellpadding='4'>"
    "<tr><th>feature</th><th>kind</th><th>meaning</th></tr>{rows}</table>"
)
