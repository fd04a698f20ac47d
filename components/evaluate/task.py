"""Glue between the KFP component's parameters/artifacts and the typed evaluation code."""

from __future__ import annotations

from typing import Any

from kfp_cicd.components.evaluate.audit_record import AuditContext
from kfp_cicd.components.evaluate.evaluation import (
    EvaluationSettings,
    MetricSinks,
    OutputPaths,
    run_evaluation_task,
)
from kfp_cicd.components.evaluate.gate import GatePolicy, parse_metric_names, standard_thresholds
from kfp_cicd.components.evaluate.metrics import COMPARABLE_METRICS
from kfp_cicd.components.evaluate.operating_point import ErrorCosts
from kfp_cicd.components.evaluate.slices import parse_slice_keys, wants_auto_slices
from kfp_cicd.errors import DataError


def compared_metrics(text: str, parameter: str, costs: ErrorCosts) -> tuple[str, ...]:
    """``champion_metrics`` / ``baseline_metrics`` as names; refuses ones two models cannot be compared on."""
    names = parse_metric_names(text)
    comparable = [n for n in COMPARABLE_METRICS if n != "expected_cost" or costs.enabled]
    unknown = [n for n in names if n not in comparable]
    if unknown:
        hint = (
            " (expected_cost needs cost_false_negative and cost_false_positive > 0)"
            if "expected_cost" in unknown
            else ""
        )
        raise DataError(
            f"{parameter} names {unknown}, which cannot be compared{hint}; choose from "
            f"{comparable}, or '' to switch the comparison off"
        )
    return names


def evaluation_settings(
    *,
    min_roc_auc: float,
    min_pr_auc: float,
    max_log_loss: float,
    min_recall_at_precision: float,
    target_precision: float,
    min_f1: float,
    max_ece: float,
    tracking_uri: str,
    model_name: str,
    champion_metrics: str,
    champion_margin: float,
    slice_keys: str,
    max_recall_gap: float,
    max_fpr_gap: float,
    min_slice_rows: int,
    min_slice_positives: int,
    cost_false_negative: float,
    cost_false_positive: float,
    max_latency_ms_per_1k_rows: float,
    max_model_size_mb: float,
    baseline_metrics: str,
    baseline_margin: float,
) -> EvaluationSettings:
    """The component's flat parameters as settings; contradictory ones are refused up front."""
    if champion_margin < 0:
        raise DataError(f"champion_margin must be >= 0, got {champion_margin}")
    if baseline_margin < 0:
        raise DataError(f"baseline_margin must be >= 0, got {baseline_margin}")
    if min_slice_rows < 1 or min_slice_positives < 1:
        raise DataError("min_slice_rows and min_slice_positives must be at least 1")
    keys = tuple(parse_slice_keys(slice_keys))
    auto = wants_auto_slices(slice_keys)
    if (max_recall_gap >= 0 or max_fpr_gap >= 0) and not (keys or auto):
        raise DataError(
            "a slice gap limit is set but slice_keys is empty: name the columns to slice by "
            "(e.g. 'country,channel,amount'), or 'auto' for the low-cardinality categoricals"
        )
    costs = ErrorCosts(cost_false_negative, cost_false_positive)
    thresholds = standard_thresholds(
        min_roc_auc,
        min_pr_auc,
        max_log_loss,
        min_recall_at_precision=min_recall_at_precision,
        min_f1=min_f1,
        max_ece=max_ece,
    )
    policy = GatePolicy(
        thresholds=thresholds,
        champion_metrics=compared_metrics(champion_metrics, "champion_metrics", costs),
        champion_margin=champion_margin,
        baseline_metrics=compared_metrics(baseline_metrics, "baseline_metrics", costs),
        baseline_margin=baseline_margin,
        max_recall_gap=max_recall_gap,
        max_fpr_gap=max_fpr_gap,
        max_latency_ms_per_1k_rows=max_latency_ms_per_1k_rows,
        max_model_size_mb=max_model_size_mb,
    )
    return EvaluationSettings(
        policy=policy,
        target_precision=target_precision,
        costs=costs,
        slice_keys=keys,
        auto_slices=auto,
        min_slice_rows=min_slice_rows,
        min_slice_positives=min_slice_positives,
        tracking_uri=tracking_uri,
        model_name=model_name,
    )


def run_component(
    *,
    model: Any,
    eval_data: str,
    settings: EvaluationSettings,
    schema: Any,
    metrics: Any,
    classification_metrics: Any,
    decision: Any,
    operating_model: Any,
    report: Any,
    model_card: Any,
    audit_record: Any,
    lineage: dict[str, str],
) -> bool:
    """Run the evaluation on KFP artifacts (``.path`` / ``.metadata``) and annotate them."""
    context = AuditContext(schema_dir=schema.path if schema is not None else "", **lineage)
    result = run_evaluation_task(
        model_dir=model.path,
        eval_data=eval_data,
        settings=settings,
        context=context,
        sinks=MetricSinks(
            metrics.log_metric,
            classification_metrics.log_confusion_matrix,
            classification_metrics.log_roc_curve,
        ),
        outputs=OutputPaths(
            decision=decision.path,
            operating_model=operating_model.path,
            report=report.path,
            model_card=model_card.path,
            audit_record=audit_record.path,
        ),
    )
    model_facts = result.record["model"]
    decision.metadata["approved"] = result.approved
    audit_record.metadata.update(
        {
            "approved": result.approved,
            "model_digest": result.model_digest,
            "decided_at": result.record["approval"]["decided_at"],
            "threshold_rule": model_facts["threshold_rule"],
            "positive_class": model_facts["classes"]["positive"],
        }
    )
    operating_model.metadata.update(
        {
            "framework": "mlflow.pyfunc",
            "approved": result.approved,
            "decision_threshold": result.operating_threshold,
            "threshold_rule": model_facts["threshold_rule"],
            "model_digest": result.model_digest,
        }
    )
    return result.approved
