"""The human summary ``kfp-cicd run`` prints: what each stage found and where everything lies."""

from __future__ import annotations

import json
from pathlib import Path

from kfp_cicd.local_run import LocalRunResult, TaskRecord
from kfp_cicd.security.secret_scan import redact_url_credentials

SCALARS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "log_loss", "ece", "accuracy")
OPERATING = ("decision_threshold", "expected_cost", "latency_ms_per_1k_rows", "model_size_mb")
BASELINE = ("baseline_roc_auc", "baseline_pr_auc", "baseline_log_loss")
TRAINING = ("train_loss", "train_roc_auc", "train_pr_auc", "world_size", "epochs")


def _task(result: LocalRunResult, prefix: str) -> TaskRecord | None:
    return next((t for name, t in result.tasks.items() if name.startswith(prefix)), None)


def _metrics(record: TaskRecord | None, artifact: str, names: tuple[str, ...]) -> str:
    if record is None or artifact not in record.artifacts:
        return "n/a"
    values = record.artifacts[artifact]["metadata"]
    return ", ".join(f"{n}={values[n]:.4g}" for n in names if n in values)


def _audit_record(record: TaskRecord) -> dict:
    """evaluate's audit record ({} when it is not there, e.g. the task failed before writing it)."""
    audit = record.artifacts.get("audit_record")
    if audit is None or not Path(audit["uri"]).is_file():
        return {}
    return json.loads(Path(audit["uri"]).read_text())


def _classes_and_threshold(record: TaskRecord) -> list[str]:
    """Which class is positive (and why) and which rule chose the operating threshold."""
    model = _audit_record(record).get("model", {})
    lines = []
    classes = model.get("classes")
    if classes:
        lines.append(
            f"  positive class: {classes['positive']!r} of {classes['column']} "
            f"(negative {classes['negative']!r}; {classes['rule']})"
        )
    if model.get("threshold_rule"):
        lines.append(f"  threshold {model['operating_threshold']:.4g} chosen by: {model['threshold_rule']}")
    return lines


def _gate_reasons(record: TaskRecord) -> list[str]:
    decision = record.artifacts.get("decision")
    if decision is None or not Path(decision["uri"]).is_file():
        return []
    return json.loads(Path(decision["uri"]).read_text()).get("reasons", [])


def format_summary(result: LocalRunResult, artifacts: bool = True) -> str:
    """A readable multi-line report of the run; ``artifacts=False`` leaves out the list of every
    artifact's location (the console shows the run's page instead, which links them)."""
    lines = [
        f"kfp-cicd local run: {'SUCCEEDED' if result.succeeded else 'FAILED'}",
        f"  run directory:   {result.run_dir}",
        f"  training data:   {result.train_data}",
        f"  holdout data:    {result.eval_data}",
        f"  MLflow store:    {redact_url_credentials(result.tracking_uri)}",
    ]
    validate = _task(result, "validate-data")
    if validate:
        p = validate.parameters
        lines.append(
            f"validation: {p.get('train_rows', '?')} training rows, {p.get('eval_rows', '?')} "
            f"holdout rows validated; {p.get('anomaly_count', '?')} anomalies"
        )
    train = _task(result, "train-model")
    lines.append(f"training:   {_metrics(train, 'metrics', TRAINING)}")
    evaluate = _task(result, "evaluate-model")
    lines.append(f"evaluation: {_metrics(evaluate, 'metrics', SCALARS)}")
    lines.append(f"operating:  {_metrics(evaluate, 'metrics', OPERATING)}")
    if evaluate:
        lines += _classes_and_threshold(evaluate)
        baseline = _metrics(evaluate, "metrics", BASELINE)
        lines.append(f"baseline:   {baseline or 'not fitted (baseline check off)'}")
        verdict = "APPROVED" if evaluate.parameters.get("Output") else "REJECTED"
        lines.append(f"gate:       {verdict}")
        lines += [f"  - {reason}" for reason in _gate_reasons(evaluate)]
    register = _task(result, "register-model")
    if register:
        p = register.parameters
        lines.append(f"registry:   {p.get('model_uri')} (alias candidate), files at {p.get('storage_uri')}")
    else:
        lines.append("registry:   nothing registered")
    deploy = _task(result, "deploy-model")
    if deploy:
        lines.append(f"deployment: {deploy.parameters.get('smoke_summary', '')}")
    if result.error:
        lines.append(f"failed:     {result.failed_task or 'the pipeline'} (the reason follows)")
    if not artifacts:
        return "\n".join(lines)
    lines.append("artifacts:")
    for task in result.tasks.values():
        for name, artifact in task.artifacts.items():
            lines.append(f"  {task.name}.{name}: {artifact['uri']}")
    return "\n".join(lines)
