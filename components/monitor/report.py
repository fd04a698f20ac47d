"""The drift report of a monitoring run: the verdict first, then every feature's measurement."""

from __future__ import annotations

import html
from typing import Any

from kfp_cicd.components.monitor.decision import RetrainingDecision


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _sorted(drift: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drifted features first, then by how close to the threshold."""

    def closeness(d: dict[str, Any]) -> float:
        return (d["value"] or 0.0) / d["threshold"] if d["threshold"] else 0.0

    return sorted(drift, key=lambda d: (not d["drifted"], -closeness(d), d["feature"]))


def drift_report_markdown(
    decision: RetrainingDecision,
    drift: list[dict[str, Any]],
    anomalies: list[dict[str, str]],
    rows: int = 0,
    baseline_rows: int = 0,
) -> str:
    """Markdown: verdict, window and baseline, drift table, schema anomalies."""
    verdict = "RETRAIN" if decision.retrain else "NO RETRAINING"
    lines = [
        f"# Monitoring: {verdict}",
        "",
        decision.reason,
        "",
        f"- model: `{decision.model_name}`"
        + (f", champion version {decision.champion_version}" if decision.champion_version else ""),
        f"- production window: `{decision.production_data}`" + (f" ({rows} rows)" if rows else ""),
    ]
    if decision.baseline:
        rows_text = f" ({baseline_rows} rows)" if baseline_rows else ""
        lines.append(f"- baseline: {decision.baseline}{rows_text}")
    if drift:
        lines += [
            "",
            "| feature | metric | value | threshold | status |",
            "| --- | --- | ---: | ---: | --- |",
        ]
        lines += [
            f"| {_cell(d['feature'])} | {d['metric']} | {_value(d['value'])} | {d['threshold']:g} | "
            f"{'**DRIFT**' if d['drifted'] else 'ok'} |"
            for d in _sorted(drift)
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
            f"| {_cell(a['feature'] or '(data set)')} | {a['kind']} | {_cell(a['explanation'])}: "
            f"{_cell(a['description'])} |"
            for a in anomalies
        ]
    return "\n".join(lines) + "\n"


def drift_report_html(
    decision: RetrainingDecision,
    drift: list[dict[str, Any]],
    anomalies: list[dict[str, str]],
    rows: int = 0,
    baseline_rows: int = 0,
) -> str:
    """The same report as a standalone HTML page."""
    verdict = "RETRAIN" if decision.retrain else "NO RETRAINING"
    colour = "#c00" if decision.retrain else "#070"
    table = "".join(
        f"<tr style='background:{'#fdd' if d['drifted'] else 'none'}'><td>{html.escape(d['feature'])}</td>"
        f"<td>{d['metric']}</td><td>{_value(d['value'])}</td><td>{d['threshold']:g}</td>"
        f"<td>{'DRIFT' if d['drifted'] else 'ok'}</td></tr>"
        for d in _sorted(drift)
    )
    anomaly_rows = "".join(
        f"<tr><td>{html.escape(a['feature'] or '(data set)')}</td><td>{html.escape(a['kind'])}</td>"
        f"<td>{html.escape(a['explanation'])}: {html.escape(a['description'])}</td></tr>"
        for a in anomalies
    )
    facts = [
        f"model <code>{html.escape(decision.model_name)}</code>"
        + (f", champion version {decision.champion_version}" if decision.champion_version else ""),
        f"production window <code>{html.escape(decision.production_data)}</code>"
        + (f" ({rows} rows)" if rows else ""),
    ]
    if decision.baseline:
        facts.append(
            f"baseline: {html.escape(decision.baseline)}"
            + (f" ({baseline_rows} rows)" if baseline_rows else "")
        )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Monitoring</title></head>"
        f"<body style='font-family: sans-serif'><h2 style='color:{colour}'>Monitoring: {verdict}</h2>"
        f"<p>{html.escape(decision.reason)}</p><ul>{''.join(f'<li>{f}</li>' for f in facts)}</ul>"
        + (_DRIFT_TABLE.format(rows=table) if drift else "")
        + (_ANOMALY_TABLE.format(count=len(anomalies), rows=anomaly_rows) if anomalies else "")
        + "</body></html>\n"
    )


_DRIFT_TABLE = (
    "<h3>Drift against the baseline</h3><table border='1' cellpadding='4'><tr><th>feature</th>"
    "<th>metric</th><th>value</th><th>threshold</th><th>status</th></tr>{rows}</table>"
)
_ANOMALY_TABLE = (
    "<h3>{count} schema anomalies in the window</h3><table border='1' cellpadding='4'>"
    "<tr><th>feature</th><th>kind</th><th>meaning</th></tr>{rows}</table>"
)
