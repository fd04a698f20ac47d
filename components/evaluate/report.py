"""The evaluation report: one self-contained HTML page (plots embedded) for the KFP UI's HTML viewer.

ROC, precision-recall and calibration plots (matplotlib) of the candidate, with the
logistic-regression baseline's and the champion's curves beside them when there are ones; which
class is positive and why; the decision with every check; the operating point and the rule that
chose it; the inference budget; and the slice table.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
from matplotlib.figure import Figure  # the object API: no pyplot state, no display backend needed
from sklearn.metrics import precision_recall_curve, roc_curve

from kfp_cicd.components.evaluate.metrics import SHOWN_METRICS, calibration_bins
from kfp_cicd.components.evaluate.outcome import EvaluationOutcome

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}
.pass{color:#17662c}.fail{color:#b00020;font-weight:bold}
.verdict{font-size:1.4em;padding:.4em .8em;display:inline-block;border-radius:4px}
.approved{background:#dff3e3}.rejected{background:#fbe3e6}
"""


def _figure_png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def compared_series(outcome: EvaluationOutcome) -> list[tuple[str, np.ndarray, str]]:
    """(name, holdout scores, line style) of the candidate, the baseline and the champion present."""
    series = [("candidate", outcome.scores, "-")]
    if outcome.baseline is not None:
        series.append((outcome.baseline.label, outcome.baseline.scores, "--"))
    if outcome.champion is not None:
        series.append((outcome.champion.label, outcome.champion.scores, "-."))
    return series


def curves_png(outcome: EvaluationOutcome) -> str:
    """ROC, PR and reliability diagram side by side, as a base64 PNG."""
    figure = Figure(figsize=(15, 4.6))
    roc_axis, pr_axis, cal_axis = figure.subplots(1, 3)
    for name, scores, style in compared_series(outcome):
        fpr, tpr, _ = roc_curve(outcome.labels, scores)
        roc_axis.plot(fpr, tpr, linestyle=style, label=name)
        precision, recall, _ = precision_recall_curve(outcome.labels, scores)
        pr_axis.plot(recall, precision, linestyle=style, label=name)
        bins = calibration_bins(outcome.labels, np.asarray(scores))
        cal_axis.plot(
            [b["mean_predicted"] for b in bins],
            [b["observed_rate"] for b in bins],
            marker="o",
            linestyle=style,
            label=name,
        )
    roc_axis.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    pr_axis.axhline(outcome.labels.mean(), linestyle=":", color="grey", label="prevalence")
    cal_axis.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    for axis, title, xlabel, ylabel in (
        (roc_axis, "ROC", "false positive rate", "true positive rate"),
        (pr_axis, "Precision-recall", "recall", "precision"),
        (
            cal_axis,
            "Calibration",
            "mean predicted probability",
            f"observed rate of {outcome.classes.positive!r}",
        ),
    ):
        axis.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
        axis.legend(loc="best", fontsize="small")
    return _figure_png(figure)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def checks_table(outcome: EvaluationOutcome) -> str:
    rows = [
        [
            html.escape(c.kind),
            html.escape(c.metric),
            _number(c.value),
            f"{html.escape(c.op)} {c.threshold:g}",
            f"<span class='{'pass' if c.passed else 'fail'}'>{'passed' if c.passed else 'FAILED'}</span>",
            html.escape(c.detail),
        ]
        for c in outcome.decision.checks
    ]
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in outcome.decision.notes)
    return _table(["kind", "check", "value", "limit", "outcome", "detail"], rows) + (
        f"<ul>{notes}</ul>" if notes else ""
    )


def metrics_table(outcome: EvaluationOutcome) -> str:
    """Candidate, baseline (when fitted) and champion (blank when there is none) side by side."""
    columns = [("candidate", outcome.report.metrics)]
    if outcome.baseline is not None:
        columns.append((outcome.baseline.label, outcome.baseline.report.metrics))
    columns.append(
        (
            outcome.champion.label if outcome.champion else "champion",
            outcome.champion.report.metrics if outcome.champion else {},
        )
    )
    names = [n for n in SHOWN_METRICS if n in outcome.report.metrics]
    rows = [[name, *(_number(metrics.get(name)) for _, metrics in columns)] for name in names]
    return _table(["metric", *(name for name, _ in columns)], rows)


def classes_paragraph(outcome: EvaluationOutcome) -> str:
    """Which value of the label is positive (what the probabilities refer to), and why."""
    classes = outcome.classes
    return (
        f"<p>Label <b>{html.escape(classes.column)}</b>: positive class "
        f"<b>{html.escape(repr(classes.positive))}</b>, negative class "
        f"{html.escape(repr(classes.negative))}; the positive class was chosen by: "
        f"{html.escape(classes.rule)}. Positive rate on the holdout: "
        f"{outcome.report.metrics['positive_rate']:.4f}.</p>"
    )


def slice_table(outcome: EvaluationOutcome) -> str:
    if not outcome.slices.segments:
        return "<p>No slice keys were given.</p>"
    rows = [
        [
            html.escape(s.key),
            html.escape(s.segment),
            str(s.rows),
            str(s.positives),
            str(s.flagged),
            _number(s.recall),
            _number(s.false_positive_rate),
            _number(s.precision),
            _number(s.roc_auc),
        ]
        for s in outcome.slices.segments
    ]
    gaps = "".join(f"<li>{html.escape(g.sentence())}</li>" for g in outcome.slices.gaps)
    return (
        _table(
            ["key", "segment", "rows", "positives", "flagged", "recall", "FPR", "precision", "ROC AUC"], rows
        )
        + f"<ul>{gaps}</ul>"
    )


def slice_note(outcome: EvaluationOutcome) -> str:
    return f"<p>{html.escape(outcome.slices.note)}</p>" if outcome.slices.note else ""


def render_report(outcome: EvaluationOutcome, title: str = "Model evaluation") -> str:
    """The whole HTML page."""
    approved = outcome.decision.approved
    verdict = "APPROVED" if approved else "REJECTED"
    cost = outcome.inference
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="verdict {"approved" if approved else "rejected"}">{verdict}</p>
{classes_paragraph(outcome)}
<p>{html.escape(outcome.baseline_note)}</p>
<p>{html.escape(outcome.champion_note)}</p>
<h2>Checks</h2>{checks_table(outcome)}
<h2>Operating point</h2><p>{html.escape(outcome.operating_point.sentence())}</p>
<h2>Holdout metrics (each model at its own threshold)</h2>{metrics_table(outcome)}
<h2>Curves</h2><img alt="ROC, precision-recall and calibration curves"
 src="data:image/png;base64,{curves_png(outcome)}">
<h2>Inference budget</h2>
<p>{cost.latency_ms_per_1k_rows:.2f} ms per 1,000 rows (median of {cost.latency_repeats}),
 model size {cost.model_size_mb:.3f} MB</p>
<h2>Slices (at the operating threshold)</h2>{slice_note(outcome)}{slice_table(outcome)}
</body></html>
"""
