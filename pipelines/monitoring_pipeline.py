"""The monitoring pipeline: check production data for drift; when it drifted, retrain and ship.

One scheduled pipeline closes the continuous-training loop::

    check_drift (a window of production data: TFDV skew vs the champion's training statistics,
                 drift vs the previous window stored in MLflow "<model_name>/monitoring")
        ├─ monitoring_verdict: what was decided, and why
        └─ if retrain → training pipeline (nested: validate → train → evaluate → register → deploy)
                      → record_retraining_trigger (tags the new version with the reason)

The training pipeline is nested as it is (``build_training_pipeline``), configured for the same
target, so retraining is exactly what a manual training run does. Runs locally through kfp.local
(which runs nested pipelines and ``dsl.If``) and compiles for Kubeflow and Vertex.
"""

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from kfp_cicd.components.monitor.component import build_component as build_check_drift
from kfp_cicd.components.monitor.component import build_record_component, build_verdict_component
from kfp_cicd.images import ImageRefs
from kfp_cicd.pipelines.parameters import (
    CHECK_DRIFT,
    MONITORING_PIPELINE,
    RECORD,
    TRAINING,
    component_arguments,
    declare_pipeline_function,
)
from kfp_cicd.pipelines.training_pipeline import (
    Target,
    TrainingResources,
    build_training_pipeline,
    run_as_image_user,
    use_mlflow_credentials,
)

PIPELINE_NAME = "kfp-cicd-monitoring"
DESCRIPTION = (
    "Compare recent production data with the champion's training statistics (TFDV skew) and with "
    "the previous window (TFDV drift); when either is past its threshold, retrain, evaluate, "
    "register and deploy."
)
SUMMARY = "Monitor production data for drift and retrain the model when it drifted."


def build_monitoring_pipeline(
    images: ImageRefs | None = None,
    target: Target | str = Target.LOCAL,
    resources: TrainingResources | None = None,
) -> GraphComponent:
    """The monitoring pipeline with components on ``images``, configured for ``target``.

    It takes every training pipeline parameter (passed on to the nested training run) plus the
    production window's (:data:`~kfp_cicd.pipelines.parameters.MONITORING_ONLY`).
    """
    images = images or ImageRefs()
    target = Target(target)
    check_drift_op = build_check_drift(images.validation)
    verdict_op = build_verdict_component(images.runtime)
    record_op = build_record_component(images.runtime)
    training = build_training_pipeline(images=images, target=target, resources=resources)

    def monitor_and_retrain(p: dict) -> None:
        check = check_drift_op(**component_arguments(CHECK_DRIFT, p, MONITORING_PIPELINE)).set_display_name(
            "check drift (TFDV)"
        )
        use_mlflow_credentials(check, target)
        verdict = verdict_op(decision=check.outputs["decision"]).set_display_name("monitoring verdict")
        # kfp.local (2.17) resolves a condition on a task's single "Output" only (see training_pipeline).
        with dsl.If(check.outputs["Output"] == True, name="drift-retrain"):  # noqa: E712
            retrain = training(
                **{parameter.name: p[parameter.name] for parameter in TRAINING}, trigger_reason=verdict.output
            ).set_display_name("retrain (training pipeline)")
            record = (
                record_op(
                    **component_arguments(RECORD, p, MONITORING_PIPELINE),
                    decision=check.outputs["decision"],
                    drift_report=check.outputs["drift_report"],
                    pipeline_job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                )
                .set_display_name("record retraining trigger")
                .after(retrain)
            )
            use_mlflow_credentials(record, target)
        # Each run reads the registry's current champion and changes the registry: never cache. The
        # nested training pipeline keeps its own per-task settings (validate/train cached, the rest not).
        for task in (check, verdict, record):
            task.set_caching_options(False)
            run_as_image_user(task, target)

    return dsl.pipeline(name=PIPELINE_NAME, description=DESCRIPTION)(
        declare_pipeline_function("monitoring_pipeline", SUMMARY, MONITORING_PIPELINE, monitor_and_retrain)
    )
