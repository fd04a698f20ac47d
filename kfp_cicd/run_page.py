"""``<run dir>/index.html``: one self-contained page per local run.

The steps with their state and time, the gate's checks, the candidate's metrics beside the
champion's and the baseline's, the training and ROC curves (inline SVG), and links to the
validation view, the evaluation report, the model card and the audit record. Nothing is loaded
from elsewhere: styles and charts are inline, links are relative paths inside the run directory
(``views/`` holds links to the artifacts under names a browser knows how to show).
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from kfp_cicd.console import format_seconds
from kfp_cicd.local_run import FAILED, SUCCEEDED, LocalRunResult, TaskRecord, short_error

COMPARED = ("roc_auc", "pr_auc", "precision", "recall", "f1", "log_loss", "ece", "accuracy", "expected_cost")
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")
#: (task prefix, artifact, file name under views/, link text)
VIEWS = (
    ("validate-data", "report", "validation.html", "validation view (TFDV statistics and anomalies)"),
    ("evaluate-model", "report", "evaluation.html", "evaluation report"),
    ("evaluate-model", "model_card", "model_card.md", "model card"),
    ("evaluate-model", "audit_record", "audit_record.json", "audit record"),
    ("check-drift", "drift_view", "drift.html", "drift view"),
    ("check-drift", "drift_report", "drift_report.md", "drift report"),
)

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;
 padding:0 16px;color:#1d1d1f}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#555}.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.succeeded,.cached{background:#1a7f37}.failed{background:#cf222e}.skipped,.pending{background:#8c959f}
.running{background:#bf8700}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
pre.error{background:#fff5f5;border:1px solid #f5c2c7;padding:10px;white-space:pre-wrap}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{border:1px solid #eee;padding:6px;width:440px}
.legend{font-size:12px}.legend span{margin-right:10px;white-space:nowrap}.note{color:#555;font-size:13px}
table.metrics{width:auto;min-width:50%}table.metrics th.num{text-align:right}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _task(result: LocalRunResult, prefix: str) -> TaskRecord | None:
    return next((t for name, t in result.tasks.items() if name.startswith(prefix)), None)


def _json_file(record: TaskRecord | None, artifact: str) -> dict:
    uri = record.artifacts.get(artifact, {}).get("uri", "") if record else ""
    if not uri or not Path(uri).is_file():
        return {}
    try:
        return json.loads(Path(uri).read_text())
    except ValueError:
        return {}


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def link_views(result: LocalRunResult) -> list[tuple[str, str]]:
    """(href, text) of each artifact view the run has, linked under ``views/`` with a known suffix."""
    views = result.run_dir / "views"
    links = []
    for prefix, artifact, name, text in VIEWS:
        record = _task(result, prefix)
        uri = record.artifacts.get(artifact, {}).get("uri", "") if record else ""
        if not uri:  # a failed task records no outputs, but may have written them (a validation view)
            written = sorted(result.pipeline_root.glob(f"*/{prefix}*/{artifact}"))
            uri = str(written[-1]) if written else ""
        if not uri or not Path(uri).is_file():
            continue
        views.mkdir(exist_ok=True)
        link = views / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(_relative(Path(uri), views))
        links.append((f"views/{name}", text))
    return links


SOLID = "&#8212;&#8212;"
#: One line of a chart: label, points, colour index, dashed.
Series = tuple[str, list[tuple[float, float]], int, bool]


def line_chart(title: str, series: list[Series], x_label: str, y_label: str) -> str:
    """An inline SVG line chart of ``series``, axes labelled with their ranges."""
    points = [p for _, line, _, _ in series for p in line]
    if not points:
        return ""
    width, height, left, bottom, top, right = 440, 260, 52, 36, 26, 12
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    base, middle = height - bottom, 'text-anchor="middle"'

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - bottom - top)

    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-weight="600">{_e(title)}</text>',
        f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#888"/>',
        f'<text x="{left}" y="{base + 14}" font-size="11">{x0:g}</text>',
        f'<text x="{width - right}" y="{base + 14}" font-size="11" text-anchor="end">{x1:g}</text>',
        f'<text x="{(left + width) / 2}" y="{height - 4}" font-size="12" {middle}>{_e(x_label)}</text>',
        f'<text x="{left - 4}" y="{base}" font-size="11" text-anchor="end">{y0:.3g}</text>',
        f'<text x="{left - 4}" y="{top + 8}" font-size="11" text-anchor="end">{y1:.3g}</text>',
        f'<text x="12" y="{(top + height - bottom) / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {(top + height - bottom) / 2})">{_e(y_label)}</text>',
    ]
    for _, line, colour_index, dashed in series:
        colour = COLOURS[colour_index % len(COLOURS)]
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in line)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6"{dash} points="{coords}"/>')
    parts.append("</svg>")
    legend = " ".join(
        f'<span style="color:{COLOURS[c % len(COLOURS)]}">{"- - -" if dashed else SOLID} {_e(label)}</span>'
        for label, _, c, dashed in series
    )
    return f'<div class="chart">{"".join(parts)}<div class="legend">{legend}</div></div>'


def training_curves(result: LocalRunResult) -> str:
    """Loss (and validation loss) per epoch, one line per cross-fitted network."""
    train = _task(result, "train-model")
    uri = train.artifacts.get("model", {}).get("uri", "") if train else ""
    history_file = Path(uri) / "training_history.json" if uri else None
    if history_file is None or not history_file.is_file():
        return ""
    history = json.loads(history_file.read_text())
    members = sorted({entry.get("member", 0) for entry in history})
    series = []
    for index, member in enumerate(members[:4]):  # more lines than that is noise
        entries = [e for e in history if e.get("member", 0) == member]
        name = f"network {member + 1} " if len(members) > 1 else ""
        series.append((f"{name}loss", [(e["epoch"], e["loss"]) for e in entries], index, False))
        if all("val_loss" in e for e in entries):
            series.append((f"{name}val_loss", [(e["epoch"], e["val_loss"]) for e in entries], index, True))
    note = f" (first 4 of {len(members)} networks)" if len(members) > 4 else ""
    return line_chart(f"training loss{note}", series, "epoch", "loss")


def roc_curve(result: LocalRunResult) -> str:
    """The candidate's ROC curve on the holdout data, from its ClassificationMetrics."""
    evaluate = _task(result, "evaluate-model")
    metadata = evaluate.artifacts.get("classification_metrics", {}).get("metadata", {}) if evaluate else {}
    confidence = metadata.get("confidenceMetrics", [])
    points = sorted((c.get("falsePositiveRate", 0.0), c.get("recall", 0.0)) for c in confidence)
    if not points:
        return ""
    return line_chart(
        "ROC curve (holdout)",
        [("candidate", points, 0, False), ("chance", [(0, 0), (1, 1)], 7, True)],
        "false positive rate",
        "recall",
    )


def _steps_section(result: LocalRunResult) -> str:
    rows = []
    for step in result.steps:
        log = result.log_dir / f"{step.name}.log"
        log_link = f'<a href="logs/{_e(step.name)}.log">log</a>' if log.is_file() else ""
        rows.append(
            f'<tr><td><span class="badge {_e(step.state)}">{_e(step.state)}</span></td>'
            f'<td>{_e(step.name)}</td><td class="num">{_e(format_seconds(step.seconds))}</td>'
            f"<td>{_e(step.headline)}</td><td>{log_link}</td></tr>"
        )
    return (
        "<h2>Steps</h2><table><tr><th>state</th><th>task</th><th>time</th><th>result</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _gate_section(decision: dict) -> str:
    if not decision:
        return ""
    verdict = "APPROVED" if decision.get("approved") else "REJECTED"
    rows = "".join(
        f"<tr><td>{_e(c['metric'])}</td><td class='num'>{c['value']:.4f}</td>"
        f"<td>{_e(c['op'])} {c['threshold']:.4g}</td><td>{_e(c.get('detail', ''))}</td>"
        f"<td class='{'pass' if c['passed'] else 'fail'}'>{'passed' if c['passed'] else 'FAILED'}</td></tr>"
        for c in decision.get("checks", [])
    )
    notes = "".join(f"<p class='note'>{_e(n)}</p>" for n in decision.get("notes", []))
    state = SUCCEEDED if decision.get("approved") else FAILED
    return (
        f"<h2>Quality gate: <span class='badge {state}'>{verdict}</span></h2>"
        "<table><tr><th>check</th><th>value</th><th>required</th><th>against</th><th></th></tr>"
        f"{rows}</table>{notes}"
    )


def _metrics_section(audit: dict, metrics: dict) -> str:
    candidate = audit.get("metrics") or metrics
    if not candidate:
        return ""
    champion = (audit.get("champion") or {}).get("metrics") or {}
    baseline = (audit.get("baseline") or {}).get("metrics") or {}
    if not baseline:
        baseline = {k.removeprefix("baseline_"): v for k, v in metrics.items() if k.startswith("baseline_")}

    def cell(values: dict, name: str) -> str:
        value = values.get(name)
        return (
            f"<td class='num'>{value:.4f}</td>"
            if isinstance(value, (int, float))
            else "<td class='num'>-</td>"
        )

    champion_label = (audit.get("champion") or {}).get("label") or "champion"
    if not champion:
        champion_label = "champion (none compared)"
    rows = "".join(
        f"<tr><td>{name}</td>{cell(candidate, name)}{cell(champion, name)}{cell(baseline, name)}</tr>"
        for name in COMPARED
        if name in candidate
    )
    notes = [(audit.get("baseline") or {}).get("note")]  # the champion's is among the gate's notes
    return (
        "<h2>Metrics on the holdout data</h2><table class='metrics'><tr><th>metric</th>"
        f"<th class='num'>candidate</th><th class='num'>{_e(champion_label)}</th>"
        "<th class='num'>baseline</th>"
        f"</tr>{rows}</table>" + "".join(f"<p class='note'>{_e(n)}</p>" for n in notes if n)
    )


def render_run_page(result: LocalRunResult) -> str:
    """The page's HTML (links under ``views/`` are created as a side effect)."""
    evaluate = _task(result, "evaluate-model")
    decision = _json_file(evaluate, "decision")
    audit = _json_file(evaluate, "audit_record")
    metrics = evaluate.artifacts.get("metrics", {}).get("metadata", {}) if evaluate else {}
    state = SUCCEEDED if result.succeeded else FAILED
    title = result.pipeline_name or "kfp-cicd run"
    parts = [
        f"<h1>{_e(title)} <span class='badge {state}'>{state}</span></h1>",
        f"<div class='meta'>run {_e(result.run_dir.name)} · started {_e(result.started)} · "
        f"{_e(format_seconds(result.seconds))} · MLflow store {_e(result.tracking_uri)}</div>",
    ]
    if not result.succeeded:
        log = f"logs/{result.failed_task}.log" if result.failed_task else "logs/pipeline.log"
        parts.append(
            f"<h2>Failure: {_e(result.failed_task or 'the pipeline')}</h2>"
            f"<pre class='error'>{_e(short_error(result.error or ''))}</pre>"
            f"<p>Full output: <a href='{_e(log)}'>{_e(log)}</a></p>"
        )
    parts.append(_steps_section(result))
    parts.append(_gate_section(decision))
    parts.append(_metrics_section(audit, metrics))
    charts = training_curves(result) + roc_curve(result)
    if charts:
        parts.append(f"<h2>Curves</h2><div class='charts'>{charts}</div>")
    register = _task(result, "register-model")
    if register and register.parameters.get("model_uri"):
        parts.append(
            f"<p>Registered: <code>{_e(register.parameters['model_uri'])}</code> (alias candidate)</p>"
        )
    links = link_views(result)
    if links:
        items = "".join(f"<li><a href='{_e(href)}'>{_e(text)}</a></li>" for href, text in links)
        parts.append(f"<h2>Reports</h2><ul>{items}</ul>")
    body = "\n".join(p for p in parts if p)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)} · {_e(result.run_dir.name)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def write_run_page(result: LocalRunResult) -> Path:
    """Write ``<run dir>/index.html`` and return its path."""
    result.page.write_text(render_run_page(result), encoding="utf-8")
    return result.page
