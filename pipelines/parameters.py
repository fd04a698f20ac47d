"""The pipeline parameters, declared once: name, type, default, description, rule, and which
component input each one feeds.

The training and monitoring pipelines' signatures and docstrings (what the KFP run form and the
compiled specs show) are generated from these tables (:func:`pipeline_signature`), the pipelines
pass each value to the component inputs it feeds (:func:`component_arguments`), the CLI types and
checks ``--param`` values with the same rules (:data:`RULES`), and tests compare every component
default and the README with them. A default lives here and nowhere else.

The monitoring pipeline takes every training parameter (it nests the training pipeline) plus its
own (:data:`MONITORING_ONLY`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kfp_cicd.parameter_validation import (
    check_accelerator_type,
    check_accepted_changes,
    check_canary_percent,
    check_choice,
    check_dns_label,
    check_dns_subdomain,
    check_fraction,
    check_gke_cluster,
    check_location,
    check_machine_type,
    check_mlflow_secrets,
    check_model_name,
    check_non_negative,
    check_quantity,
    check_table_location,
    check_tracking_uri,
    check_vertex_endpoint,
    require_text,
)

REQUIRED = inspect.Parameter.empty
Rule = Callable[[Any, str], Any]

# Component keys (the ``feeds`` of a parameter name them; the pipelines map keys to their ops).
VALIDATE, TRAIN, EVALUATE, REGISTER, DEPLOY = "validate", "train", "evaluate", "register", "deploy"
CHECK_DRIFT, RECORD = "check_drift", "record"
REFERENCE = "reference"  # data_contract_reference: the champion's contract validate_data checks against
TRAINERS = (TRAIN, "pytorchjob")  # the single-node and the multi-node training component
DEPLOY_TARGETS = ("kubernetes", "gke", "vertex-endpoint", "local")
DEPLOYMENT_MODES = ("Serverless", "Knative", "RawDeployment", "Standard")


@dataclass(frozen=True)
class PipelineParameter:
    """One pipeline input: its type, default (``REQUIRED`` when none), description and rule.

    ``feeds`` names the component inputs it is passed to, as ``component`` (same input name) or
    ``component:input`` (the component names it differently).
    """

    name: str
    type: type
    default: Any
    description: str
    feeds: tuple[str, ...] = ()
    rule: Rule | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def input_for(self, component: str) -> str | None:
        """The input of ``component`` this parameter feeds, or None."""
        for target in self.feeds:
            key, _, name = target.partition(":")
            if key == component:
                return name or self.name
        return None


def _optional(rule: Rule) -> Rule:
    """``rule`` for a parameter whose empty value means "not given"."""
    return lambda value, name: value if value == "" else rule(value, name)


P = PipelineParameter
TRAINING: tuple[PipelineParameter, ...] = (
    # --- data --------------------------------------------------------------------------------------
    P(
        "train_data",
        str,
        REQUIRED,
        "Training data (CSV/Parquet; local path, gs:// or s3://) with the label column.",
        (VALIDATE, *TRAINERS, EVALUATE, REGISTER),
        check_table_location,
    ),
    P(
        "eval_data",
        str,
        REQUIRED,
        "Holdout data with the label column, used for validation and the gate.",
        (VALIDATE, EVALUATE, DEPLOY),
        check_table_location,
    ),
    P(
        "mlflow_tracking_uri",
        str,
        REQUIRED,
        "MLflow tracking server (http://…) or store (sqlite:///…).",
        (
            f"{VALIDATE}:tracking_uri",
            f"{REFERENCE}:tracking_uri",
            f"{EVALUATE}:tracking_uri",
            f"{REGISTER}:tracking_uri",
            f"{DEPLOY}:tracking_uri",
            f"{CHECK_DRIFT}:tracking_uri",
            f"{RECORD}:tracking_uri",
        ),
        check_tracking_uri,
    ),
    P(
        "label_column",
        str,
        REQUIRED,
        "Name of the label column: any two distinct values (0/1, true/false, Yes/No, two strings).",
        (VALIDATE, CHECK_DRIFT),
        require_text,
    ),
    P(
        "positive_label",
        str,
        "",
        'Which label value is the positive class the model scores; "": 1, true or yes when the label '
        "has them, else the less frequent class (the rule used is recorded in the model card).",
        (VALIDATE,),
    ),
    P(
        "model_name",
        str,
        REQUIRED,
        "Registered model name in MLflow (also the InferenceService name): the model this run may "
        "replace as champion.",
        (VALIDATE, REFERENCE, EVALUATE, REGISTER, DEPLOY, CHECK_DRIFT, RECORD),
        check_model_name,
    ),
    P(
        "schema_path",
        str,
        "",
        'TFDV schema (.pbtxt) to validate against, e.g. one written by "kfp-cicd schema accept"; "": the '
        "champion's stored schema (the first release infers one from train_data and stores it).",
        (VALIDATE, CHECK_DRIFT),
        _optional(lambda v, n: check_location(v, n, suffixes=(".pbtxt", ".txt"))),
    ),
    P(
        "tolerate_anomalies",
        str,
        "",
        "Comma-separated TFDV anomaly kinds that do not fail validation.",
        (VALIDATE,),
    ),
    P(
        "baseline_statistics",
        str,
        "",
        "TFDV statistics (.pb) to check the training data's drift against; \"\": the champion's stored "
        "training statistics (no drift check for the first release).",
        (VALIDATE,),
        _optional(check_location),
    ),
    P(
        "range_tolerance",
        float,
        1.0,
        "How far beyond a numeric feature's observed range (stored with the reference schema) values may "
        "go, as a fraction of that range; a feature never negative stays non-negative.",
        (VALIDATE,),
        check_non_negative,
    ),
    P(
        "max_unknown_category_fraction",
        float,
        0.01,
        "Largest share of a categorical feature's values that may be outside the reference schema's "
        "categories.",
        (VALIDATE,),
        check_fraction,
    ),
    P(
        "accept_data_changes",
        str,
        "",
        'Accept changes against the reference in this run, comma-separated: "drift", "ranges" (numeric '
        'values beyond the reference\'s ranges), "schema" (ranges, new categories, new columns); recorded '
        'in the audit record and the model card. "": none (a retraining run started by monitoring '
        "accepts drift and ranges).",
        (VALIDATE,),
        check_accepted_changes,
    ),
    P(
        "drift_thresholds",
        str,
        "",
        'JSON object of per-feature drift thresholds, e.g. {"amount": 0.3}; a negative one turns a '
        "feature's check off.",
        (VALIDATE, CHECK_DRIFT),
    ),
    P(
        "drift_default_threshold",
        float,
        0.15,
        "Drift threshold of features not in drift_thresholds (L-infinity distance for categorical, "
        "Jensen-Shannon divergence for numeric features).",
        (VALIDATE, CHECK_DRIFT),
    ),
    P(
        "validation_processing",
        str,
        "auto",
        '"auto", "in_memory" or "beam" statistics computation.',
        (f"{VALIDATE}:processing",),
        lambda v, n: check_choice(v, n, ("auto", "in_memory", "beam")),
    ),
    P(
        "beam_options",
        str,
        "",
        'Apache Beam pipeline options for large data, e.g. "--runner=DataflowRunner --project=p '
        '--region=r --temp_location=gs://b/tmp".',
        (VALIDATE,),
    ),
    P(
        "beam_threshold_mb",
        float,
        1024.0,
        'In "auto", files larger than this go through Beam (when beam_options name a runner).',
        (VALIDATE,),
    ),
    P(
        "sample_rate",
        float,
        1.0,
        "Fraction of rows TFDV computes statistics on (1.0: all).",
        (VALIDATE, CHECK_DRIFT),
    ),
    # --- training ----------------------------------------------------------------------------------
    P(
        "epochs",
        int,
        0,
        "Most passes over the training data; early stopping may end sooner (0: chosen from the data "
        "set's size).",
        TRAINERS,
    ),
    P(
        "batch_size",
        int,
        0,
        "Rows per optimisation step on each worker (0: chosen from the data set's size).",
        TRAINERS,
    ),
    P("learning_rate", float, 0.0, "AdamW learning rate (0: chosen from the batch size).", TRAINERS),
    P(
        "hidden_units",
        str,
        "",
        'Hidden layer widths of the network, e.g. "64,32" ("": chosen from the input width).',
        TRAINERS,
    ),
    P(
        "early_stopping_patience",
        int,
        5,
        "Epochs without a better validation loss before training stops (0: never stop early).",
        TRAINERS,
    ),
    P(
        "validation_fraction",
        float,
        0.15,
        "Share of the training rows held out (stratified) for early stopping, calibration and the "
        "decision threshold when one split is used.",
        TRAINERS,
    ),
    P(
        "validation_folds",
        int,
        0,
        "0: chosen from the data set's size (5-fold cross-fitting up to 20,000 training rows, else one "
        "split); 1: one split of validation_fraction; k: k-fold cross-fitting (k networks averaged).",
        TRAINERS,
    ),
    P("num_processes", int, 2, "CPU workers when no GPU is present (one per GPU otherwise).", TRAINERS),
    P(
        "decision_threshold",
        float,
        -1.0,
        "Probability above which the model predicts the positive class (negative: the threshold with "
        "the best F1 on the validation rows).",
        TRAINERS,
    ),
    P("seed", int, 0, "Random seed.", TRAINERS),
    # --- gate --------------------------------------------------------------------------------------
    P("min_roc_auc", float, 0.6, "Gate: lowest holdout ROC AUC (negative disables).", (EVALUATE,)),
    P(
        "min_pr_auc",
        float,
        -1.0,
        "Gate: lowest holdout PR AUC; it depends on the positive rate, so it is off by default "
        "(negative disables).",
        (EVALUATE,),
    ),
    P("max_log_loss", float, -1.0, "Gate: highest holdout log loss (negative disables).", (EVALUATE,)),
    P(
        "max_ece",
        float,
        0.1,
        "Gate: highest expected calibration error of the probabilities (negative disables).",
        (EVALUATE,),
    ),
    P(
        "min_recall_at_precision",
        float,
        -1.0,
        "Gate: lowest recall at target_precision (negative disables).",
        (EVALUATE,),
    ),
    P(
        "target_precision",
        float,
        0.5,
        "Precision at which recall is measured for min_recall_at_precision.",
        (EVALUATE,),
    ),
    P("min_f1", float, -1.0, "Gate: lowest F1 at the operating threshold (negative disables).", (EVALUATE,)),
    P(
        "baseline_metrics",
        str,
        "roc_auc,log_loss",
        "Metrics on which the candidate must not be worse than a logistic regression fitted on the same "
        'training data and preprocessing (comma-separated; "" disables).',
        (EVALUATE,),
    ),
    P(
        "baseline_margin",
        float,
        0.02,
        "How much worse than its baseline the candidate may be on each baseline metric.",
        (EVALUATE,),
    ),
    P(
        "champion_metrics",
        str,
        "roc_auc,pr_auc",
        "Metrics on which the candidate must not be worse than the model behind the MLflow alias "
        '"champion" (comma-separated; "" disables).',
        (EVALUATE,),
    ),
    P("champion_margin", float, 0.01, "How much worse than the champion the candidate may be.", (EVALUATE,)),
    P(
        "slice_keys",
        str,
        "",
        'Columns to report metrics per segment for (numeric columns in quartile bands; "amount:50|200" '
        'for explicit bands; "auto": the low-cardinality categorical columns; "": none).',
        (EVALUATE,),
    ),
    P(
        "max_recall_gap",
        float,
        -1.0,
        "Gate: largest recall gap between segments (negative disables).",
        (EVALUATE,),
    ),
    P(
        "max_fpr_gap",
        float,
        -1.0,
        "Gate: largest false-positive-rate gap between segments (negative disables).",
        (EVALUATE,),
    ),
    P("min_slice_rows", int, 200, "Segments with fewer rows are reported but not gated.", (EVALUATE,)),
    P(
        "min_slice_positives",
        int,
        10,
        "Segments with fewer positives are reported but not gated.",
        (EVALUATE,),
    ),
    P(
        "cost_false_negative",
        float,
        -1.0,
        "Cost of a missed positive; with cost_false_positive it picks the cost-optimal operating "
        "threshold on the holdout (negative: keep the model's threshold).",
        (EVALUATE,),
    ),
    P(
        "cost_false_positive",
        float,
        -1.0,
        "Cost of a false alarm (negative: see cost_false_negative).",
        (EVALUATE,),
    ),
    P(
        "max_latency_ms_per_1k_rows",
        float,
        -1.0,
        "Gate: prediction latency budget (negative disables).",
        (EVALUATE,),
    ),
    P("max_model_size_mb", float, -1.0, "Gate: model size budget (negative disables).", (EVALUATE,)),
    P("approved_by", str, "", "Who approves this release (recorded in the audit record).", (EVALUATE,)),
    # --- registry and serving ----------------------------------------------------------------------
    P(
        "deploy_target",
        str,
        "kubernetes",
        '"kubernetes" (KServe InferenceService) or "local" (predictor on loopback).',
        (f"{DEPLOY}:target",),
        lambda v, n: check_choice(v, n, DEPLOY_TARGETS),
    ),
    P(
        "namespace",
        str,
        "kfp-cicd",
        "Kubernetes namespace of the InferenceService (and of a multi-node training PyTorchJob).",
        (DEPLOY, "pytorchjob"),
        check_dns_label,
    ),
    P(
        "deployment_mode",
        str,
        "Serverless",
        "KServe deployment mode: Serverless or RawDeployment.",
        (DEPLOY,),
        lambda v, n: check_choice(v, n, DEPLOYMENT_MODES),
    ),
    P(
        "canary_traffic_percent",
        int,
        10,
        "Share of traffic a new version gets while it is checked, before it is promoted to 100 % or "
        "rolled back to 0 %.",
        (DEPLOY,),
        check_canary_percent,
    ),
    P(
        "service_account",
        str,
        "",
        "Service account of the predictor (storage credentials).",
        (DEPLOY,),
        _optional(check_dns_subdomain),
    ),
    P(
        "min_replicas",
        int,
        1,
        "Minimum predictor replicas (0 allowed in Serverless mode).",
        (DEPLOY,),
        check_non_negative,
    ),
    P("max_replicas", int, 1, "Maximum predictor replicas.", (DEPLOY,), check_non_negative),
    P("serving_cpu", str, "1", "CPU request/limit of the predictor.", (f"{DEPLOY}:cpu",), check_quantity),
    P(
        "serving_memory",
        str,
        "2Gi",
        "Memory request/limit of the predictor.",
        (f"{DEPLOY}:memory",),
        check_quantity,
    ),
    P(
        "ready_timeout_seconds",
        int,
        600,
        "How long to wait for the InferenceService to become Ready before rolling back.",
        (DEPLOY,),
    ),
    P(
        "smoke_requests",
        int,
        20,
        "Single-row requests sent to the new version to measure errors/latency.",
        (DEPLOY,),
    ),
    P("max_error_rate", float, 0.0, "Highest tolerated error rate of those requests.", (DEPLOY,)),
    P("max_p95_latency_ms", float, 1000.0, "Highest tolerated p95 latency of those requests.", (DEPLOY,)),
    P(
        "gke_cluster",
        str,
        "",
        'deploy_target "gke": the GKE cluster as projects/PROJECT/locations/LOCATION/clusters/NAME '
        "(endpoint and CA from the GKE API, the task's Google credentials for Kubernetes).",
        (DEPLOY,),
        _optional(check_gke_cluster),
    ),
    P(
        "vertex_endpoint",
        str,
        "",
        'deploy_target "vertex-endpoint": the Vertex AI Endpoint as '
        "projects/PROJECT/locations/REGION/endpoints/ID (created with that ID if missing).",
        (DEPLOY,),
        _optional(check_vertex_endpoint),
    ),
    P(
        "vertex_machine_type",
        str,
        "n1-standard-2",
        'deploy_target "vertex-endpoint": machine type of the serving nodes.',
        (DEPLOY,),
        check_machine_type,
    ),
    P(
        "vertex_accelerator_type",
        str,
        "",
        'deploy_target "vertex-endpoint": accelerator per serving node (e.g. NVIDIA_L4); "": none.',
        (DEPLOY,),
        _optional(check_accelerator_type),
    ),
    P(
        "vertex_accelerator_count",
        int,
        1,
        'deploy_target "vertex-endpoint": accelerators per serving node when a type is given.',
        (DEPLOY,),
        check_non_negative,
    ),
    P(
        "mlflow_secrets",
        str,
        "",
        "MLflow credentials from Google Secret Manager (Vertex): ENV=projects/P/secrets/S/versions/latest, "
        "comma-separated, ENV one of MLFLOW_TRACKING_USERNAME/_PASSWORD/_TOKEN, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY; secret names only, never values.",
        (VALIDATE, REFERENCE, EVALUATE, REGISTER, DEPLOY, CHECK_DRIFT, RECORD),
        check_mlflow_secrets,
    ),
)

#: Set by the monitoring pipeline when it retrains (the version tag retraining_reason); a training
#: pipeline input, not one of the monitoring pipeline's.
TRIGGER_REASON = P(
    "trigger_reason",
    str,
    "",
    "Why this run was started (set by the monitoring pipeline; version tag retraining_reason; a "
    "retraining run accepts drift and wider numeric ranges against the champion's reference).",
    (VALIDATE, REGISTER),
)

MONITORING_ONLY: tuple[PipelineParameter, ...] = (
    P(
        "production_data",
        str,
        REQUIRED,
        "A recent window of production data (CSV/Parquet; local, gs://, s3://), e.g. yesterday's logged "
        "requests; a label column in it is ignored.",
        (CHECK_DRIFT,),
        check_table_location,
    ),
    P(
        "numeric_histogram",
        str,
        "auto",
        'Buckets of numeric features\' divergence: "auto" (quantiles for float, standard for integer '
        'features), "quantiles" or "standard".',
        (CHECK_DRIFT,),
        lambda v, n: check_choice(v, n, ("auto", "quantiles", "standard")),
    ),
)

TRAINING_PIPELINE = (*TRAINING, TRIGGER_REASON)
MONITORING_PIPELINE = (*MONITORING_ONLY, *TRAINING)
BY_NAME: dict[str, PipelineParameter] = {p.name: p for p in (*MONITORING_ONLY, *TRAINING_PIPELINE)}
#: The rule of every parameter that has one (what ``--param`` values are checked with).
RULES: dict[str, Rule] = {p.name: p.rule for p in BY_NAME.values() if p.rule is not None}


def component_arguments(
    component: str, values: Mapping[str, Any], parameters: Iterable[PipelineParameter] = TRAINING_PIPELINE
) -> dict[str, Any]:
    """The inputs of ``component`` fed by pipeline parameters: ``{input name: values[parameter]}``."""
    arguments = {}
    for parameter in parameters:
        name = parameter.input_for(component)
        if name is not None and parameter.name in values:
            arguments[name] = values[parameter.name]
    return arguments


def pipeline_signature(parameters: Iterable[PipelineParameter]) -> inspect.Signature:
    """The pipeline function's signature: required parameters first, each typed, with its default."""
    ordered = sorted(parameters, key=lambda p: not p.required)
    return inspect.Signature(
        [
            inspect.Parameter(
                p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default, annotation=p.type
            )
            for p in ordered
        ]
    )


def pipeline_docstring(summary: str, parameters: Iterable[PipelineParameter]) -> str:
    """A Google-style docstring KFP reads the parameter descriptions from."""
    lines = [summary, "", "Args:"]
    # One line each: KFP keeps a wrapped description's line breaks in the UI and the spec.
    lines += [f"    {p.name}: {p.description}" for p in parameters]
    return "\n".join(lines)


def declare_pipeline_function(
    name: str, summary: str, parameters: tuple[PipelineParameter, ...], body: Callable[[dict[str, Any]], None]
) -> Callable[..., None]:
    """A function KFP's ``@dsl.pipeline`` accepts, whose inputs are ``parameters``.

    KFP reads inputs from ``inspect.signature`` and descriptions from the docstring, and calls the
    function with one channel per input, in signature order; ``body`` gets them by name.
    """
    signature = pipeline_signature(parameters)
    names = list(signature.parameters)

    def pipeline_function(*channels: Any) -> None:
        body(dict(zip(names, channels, strict=True)))

    pipeline_function.__signature__ = signature  # type: ignore[attr-defined]
    pipeline_function.__name__ = pipeline_function.__qualname__ = name
    pipeline_function.__doc__ = pipeline_docstring(summary, parameters)
    return pipeline_function


def markdown_table(parameters: Iterable[PipelineParameter]) -> str:
    """The parameters as the README's Markdown table (``python -m kfp_cicd.pipelines.parameters``)."""
    rows = ["| parameter | type | default | description |", "| --- | --- | --- | --- |"]
    for p in parameters:
        default = "required" if p.required else f"`{p.default!r}`".replace("'", '"')
        description = p.description.replace("|", "\\|")
        rows.append(f"| `{p.name}` | {p.type.__name__} | {default} | {description} |")
    return "\n".join(rows)


def readme_section() -> str:
    """What stands between the README's ``parameters:start``/``parameters:end`` markers."""
    return (
        "Training pipeline (the monitoring pipeline takes all of them but `trigger_reason`, which "
        "it sets itself):\n\n"
        + markdown_table(TRAINING_PIPELINE)
        + "\n\nMonitoring pipeline only:\n\n"
        + markdown_table(MONITORING_ONLY)
    )


if __name__ == "__main__":
    print(readme_section())
