"""User strings in the pages the suite writes: markup stays text, formula strings stay as they are.

The KFP UI's Markdown viewer and MLflow's version page render inline HTML, so a column name or a
segment value such as ``<img src=x onerror=...>`` from the data must arrive escaped. The suite
writes no CSV report (anomalies are JSON, reports HTML/Markdown), so there is no spreadsheet to
inject formulas into; formula strings are data and are shown unchanged. The validation pages are
checked end to end in test_hostile_validation.py; here the Markdown builders directly.
"""

from __future__ import annotations

from kfp_cicd.components.evaluate.model_card import render_model_card
from kfp_cicd.tfdv.jobs.tfdv_reports import (
    anomaly_table_html,
    drift_markdown,
    summary_markdown,
)

MARKUP = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
FORMULA = "=cmd|' /C calc'!A0"


def _record() -> dict:
    """An audit record (the model card's input) with markup wherever the data or a user names things."""
    return {
        "model": {
            "name": MARKUP,
            "label": "is_fraud",
            "digest": "sha256:1",
            "candidate_digest": "sha256:2",
            "operating_threshold": 0.5,
            "features": {"numeric": ["amount", MARKUP], "categorical": [FORMULA]},
        },
        "data": {
            "train_data": f"{MARKUP}.csv",
            "data_fingerprint": "sha256:3",
            "eval_data": "e.csv",
            "eval_rows": 10,
            "eval_data_digest": "sha256:4",
            "schema": {},
        },
        "code": {"code_revision": "abc", "kfp_cicd_version": "0.1", "images": {}},
        "pipeline": {"job_name": "j", "job_id": "1"},
        "decision": {
            "checks": [
                {
                    "kind": "metric",
                    "metric": "roc_auc",
                    "value": 0.9,
                    "op": ">=",
                    "threshold": 0.8,
                    "passed": True,
                    "detail": MARKUP,
                }
            ],
            "notes": [MARKUP],
        },
        "approval": {"decision": "approved", "decided_by": "gate", "decided_at": "now"},
        "metrics": {"roc_auc": 0.9},
        "champion": {"note": "no champion", "metrics": {}, "label": None},
        "operating_point": {"expected_cost_per_row": None},
        "inference": {"latency_ms_per_1k_rows": 1.0, "model_size_mb": 0.1},
        "slices": {
            "segments": [
                {
                    "key": "country",
                    "segment": MARKUP,
                    "rows": 5,
                    "positives": 1,
                    "recall": 0.5,
                    "false_positive_rate": 0.1,
                    "precision": 0.5,
                }
            ],
            "gaps": [
                {
                    "metric": "recall",
                    "key": "country",
                    "gap": 0.2,
                    "highest": MARKUP,
                    "highest_value": 0.6,
                    "lowest": "b",
                    "lowest_value": 0.4,
                }
            ],
        },
        "parameters": {"model_name": MARKUP},
    }


def test_model_card_escapes_markup_from_data_and_names() -> None:
    card = render_model_card(_record())
    rendered, _, parameters = card.partition("```json")
    assert MARKUP not in rendered  # everywhere Markdown renders it
    assert rendered.count(ESCAPED) == 7  # title, check detail, note, data path, feature, segment, gap
    assert MARKUP in parameters  # inside a fenced code block it is shown, not rendered
    assert f"1 categorical ({FORMULA})" in rendered  # formula strings are shown as they are


def test_validation_markdown_and_html_escape_feature_names_and_values() -> None:
    records = [
        {
            "dataset": "eval",
            "feature": MARKUP,
            "kind": "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
            "explanation": "a category",
            "description": f"values missing: {MARKUP} | {FORMULA}",
            "short_description": "",
        }
    ]
    drift = [{"feature": MARKUP, "metric": "L_INFINITY", "value": 0.5, "threshold": 0.1, "drifted": True}]
    summary = {"row_counts": {"train": 1, "eval": 1}, "processing": "in memory", "schema_inferred": True}
    for page in (
        summary_markdown(summary, records, drift),
        drift_markdown(drift, f"gs://b/{MARKUP}"),
        anomaly_table_html(records),
    ):
        assert MARKUP not in page and ESCAPED in page, page
    assert "\\| =cmd\\|' /C calc'!A0" in summary_markdown(summary, records, drift)  # pipes escaped only
