"""The model card: the audit record rendered as Markdown (KFP's Markdown viewer, MLflow's version page)."""

from __future__ import annotations

import html
import json

from kfp_cicd.components.evaluate.metrics import SHOWN_METRICS


def _text(value: object) -> str:
    """Text that came from the data or the user (column names, segment values, model names).

    HTML-escaped: KFP's Markdown viewer and MLflow's version page render inline HTML, and a
    segment value such as ``<img src=x onerror=...>`` must stay text.
    """
    return html.escape(str(value), quote=False)


def _value(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return _text(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_value(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _decision_section(record: dict) -> list[str]:
    decision, approval = record["decision"], record["approval"]
    lines = [
        f"## Decision: **{approval['decision'].upper()}**",
        "",
        f"Decided by {approval['decided_by']} at {approval['decided_at']}"
        + (
            f", pipeline run `{approval['pipeline_job_name']}` ({approval['pipeline_job_id']})"
            if approval.get("pipeline_job_name")
            else ""
        )
        + ".",
        "",
    ]
    rows = [
        [
            c["kind"],
            c["metric"],
            c["value"],
            f"{c['op']} {c['threshold']:g}",
            "passed" if c["passed"] else "**FAILED**",
            c.get("detail", ""),
        ]
        for c in decision["checks"]
    ]
    lines += _table(["kind", "check", "value", "limit", "outcome", "detail"], rows)
    lines += [f"- {_text(note)}" for note in decision.get("notes", [])]
    return [*lines, ""]


def _lineage_section(record: dict) -> list[str]:
    model, data, code = record["model"], record["data"], record["code"]
    schema = data.get("schema") or {}
    rows = [
        ["model digest", model["digest"]],
        ["trained model digest", model["candidate_digest"]],
        ["operating threshold", model["operating_threshold"]],
        ["threshold chosen by", model.get("threshold_rule")],
        ["training data", data["train_data"]],
        ["training data fingerprint", data["data_fingerprint"]],
        ["evaluation data", data["eval_data"]],
        ["evaluation rows", data["eval_rows"]],
        ["evaluation data digest", data["eval_data_digest"]],
        ["schema digest", schema.get("schema_sha256")],
        ["code revision", code["code_revision"]],
        ["kfp-cicd version", code["kfp_cicd_version"]],
    ]
    rows += [[f"image: {name}", ref] for name, ref in code["images"].items()]
    rows += [
        ["pipeline run", record["pipeline"]["job_name"]],
        ["pipeline run id", record["pipeline"]["job_id"]],
    ]
    lines = ["## Lineage", "", *_table(["what", "value"], rows)]
    features = model["features"]
    lines += [
        f"Features: {len(features['numeric'])} numeric ({_text(', '.join(features['numeric']))}); "
        f"{len(features['categorical'])} categorical ({_text(', '.join(features['categorical']))}). "
        + _classes_sentence(model),
        "",
    ]
    if model.get("training_history"):
        history = model["training_history"]
        networks = history.get("networks", 1)
        averaged = f" per network, {networks} cross-fitted networks averaged" if networks > 1 else ""
        lines += [
            f"Training: {history['epochs']} epochs{averaged}; last epoch: "
            f"`{json.dumps(history['last_epoch'], sort_keys=True)}`.",
            "",
        ]
    return lines


def _operating_point_lines(record: dict) -> list[str]:
    """Which rule chose the operating threshold, and the expected cost when costs were given."""
    point = record["operating_point"]
    lines = []
    if point.get("source"):
        lines += [f"Operating threshold {point['threshold']:.4f}, chosen by: {_text(point['source'])}.", ""]
    if point.get("expected_cost_per_row") is not None:
        lines += [
            f"Expected cost {point['expected_cost_per_row']:.4f} per row (missed positive "
            f"{point['cost_false_negative']:g}, false alarm {point['cost_false_positive']:g}), vs "
            f"{point['default_expected_cost_per_row']:.4f} at the model's own threshold "
            f"{point['default_threshold']:.4f} ({_text(point.get('default_rule', ''))}).",
            "",
        ]
    return lines


def _data_contract_section(record: dict) -> list[str]:
    """The reference the data was validated against, and any change accepted in the run."""
    contract = ((record["data"].get("schema") or {}).get("contract")) or None
    if contract is None:
        return []
    reference, accepted = contract.get("reference") or {}, contract.get("accepted")
    lines = ["## Data contract", ""]
    if reference.get("kind") == "first_release" and not reference.get("champion"):
        lines.append(
            "First release: the schema was inferred from the training data and is stored with this "
            "version as the reference for the next run."
        )
    else:
        lines.append(f"Data validated against {_text(reference.get('name', '?'))}.")
    acceptance = contract.get("schema_acceptance")
    if acceptance:
        lines.append(
            f"Schema file accepted by {_text(acceptance.get('accepted-by', '?'))} at "
            f"{_text(acceptance.get('accepted-at', '?'))}."
        )
    lines.append("")
    if accepted:
        lines += [
            f"**Changes accepted in this run: {_text(', '.join(accepted['changes']))}**, by "
            f"{_text(accepted.get('accepted_by', '?'))} at {_text(accepted.get('accepted_at', '?'))} "
            f"({_text(accepted.get('reason', ''))}).",
            "",
        ]
        rows = [
            [a["dataset"], a["feature"], a["kind"], a.get("short_description", "")]
            for a in accepted["anomalies"]
        ]
        if rows:
            lines += _table(["data", "feature", "accepted anomaly", "what"], rows)
    return lines


def _performance_section(record: dict) -> list[str]:
    metrics = record["metrics"]
    champion = record["champion"]
    baseline = record.get("baseline") or {}
    columns = [("this model", metrics)]
    if baseline.get("metrics"):
        columns.append((baseline.get("label") or "baseline", baseline["metrics"]))
    columns.append((champion.get("label") or "champion", champion.get("metrics") or {}))
    rows = [[n, *(values.get(n) for _, values in columns)] for n in SHOWN_METRICS if n in metrics]
    lines = ["## Performance on the holdout", ""]
    if baseline.get("note"):
        lines += [_text(baseline["note"]), ""]
    lines += [_text(champion["note"]), "", *_table(["metric", *(_text(name) for name, _ in columns)], rows)]
    lines += _operating_point_lines(record)
    inference = record["inference"]
    lines += [
        f"Inference: {inference['latency_ms_per_1k_rows']:.2f} ms per 1,000 rows, "
        f"{inference['model_size_mb']:.3f} MB.",
        "",
    ]
    return lines


def _classes_sentence(model: dict) -> str:
    """Which value of the label is the positive class, and the rule that chose it."""
    classes = model.get("classes") or {}
    label = _text(model.get("label"))
    if not classes:
        return f"Label: {label} (positive class: 1)."
    return (
        f"Label: {label}; positive class {_text(repr(classes['positive']))}, negative class "
        f"{_text(repr(classes['negative']))}; the positive class was chosen by: "
        f"{_text(classes['rule'])}. Probabilities and the operating threshold refer to the positive "
        "class."
    )


def _slices_section(record: dict) -> list[str]:
    segments = record["slices"]["segments"]
    if not segments:
        return ["## Segments", "", "No slice keys were given.", ""]
    rows = [
        [
            s["key"],
            s["segment"],
            s["rows"],
            s["positives"],
            s["recall"],
            s["false_positive_rate"],
            s["precision"],
        ]
        for s in segments
    ]
    lines = [
        "## Segments",
        "",
        *_table(["key", "segment", "rows", "positives", "recall", "FPR", "precision"], rows),
    ]
    for gap in record["slices"]["gaps"]:
        if gap["gap"] is None:
            lines.append(
                f"- {gap['metric']} gap across {_text(gap['key'])}: not measured ({_text(gap['note'])})"
            )
        else:
            lines.append(
                f"- {gap['metric']} gap across {_text(gap['key'])}: {gap['gap']:.4f} "
                f"({_text(gap['highest'])} {gap['highest_value']:.4f} vs "
                f"{_text(gap['lowest'])} {gap['lowest_value']:.4f})"
            )
    return [*lines, ""]


def render_model_card(record: dict) -> str:
    """Markdown: decision first, then lineage, performance, segments and the parameters used."""
    title = _text(record["model"]["name"] or "model")
    lines = [
        f"# Model card: {title}",
        "",
        "Binary classifier for tabular data. " + _classes_sentence(record["model"]),
        "Generated by kfp-cicd's evaluation step from the audit record stored with this version.",
        "",
    ]
    lines += _decision_section(record) + _lineage_section(record) + _data_contract_section(record)
    lines += _performance_section(record) + _slices_section(record)
    lines += [
        "## Parameters",
        "",
        "```json",
        json.dumps(record["parameters"], indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)
