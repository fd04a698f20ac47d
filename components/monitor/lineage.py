"""Record why a version was trained: tag the versions a monitoring run's retraining registered.

The nested training pipeline registers its model with the run's ``pipeline_job_id`` tag (the id
is the same for a pipeline and the pipelines nested in it, on Kubeflow, Vertex and kfp.local).
After it finished, the versions of the model carrying this run's id get the trigger: the
decision's reason, the drifted features, the window and the champion they replace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mlflow.exceptions import MlflowException

from kfp_cicd.components.monitor.decision import RetrainingDecision
from kfp_cicd.errors import KfpCicdError, RegistryError
from kfp_cicd.parameter_validation import check_model_name
from kfp_cicd.registry.client import client_for
from kfp_cicd.registry.tags import TRIGGER_REASON_TAG, clip

log = logging.getLogger(__name__)
TRIGGER_TAG = "retraining_trigger"


@dataclass(frozen=True)
class TriggerRecord:
    """Which versions got the trigger tags (empty: the gate registered nothing)."""

    model_name: str
    versions: tuple[str, ...]
    reason: str

    def summary(self) -> str:
        if not self.versions:
            return (
                f"retrained because {self.reason}; the evaluation gate approved no new version of "
                f"{self.model_name}, so nothing was registered and the champion keeps serving"
            )
        return f"{self.model_name} version(s) {', '.join(self.versions)} trained because {self.reason}"


def trigger_tags(decision: RetrainingDecision, monitoring_report: str = "") -> dict[str, str]:
    """The tags recorded on a retrained version."""
    tags = {
        TRIGGER_TAG: decision.trigger,
        TRIGGER_REASON_TAG: decision.reason,
        "retraining_window": decision.production_data,
        "retraining_drifted_features": ",".join(decision.drifted_features),
        "retraining_replaces_champion": decision.champion_version,
        "retraining_report": monitoring_report,
    }
    return {key: clip(value) for key, value in tags.items() if value}


def versions_of_run(tracking_uri: str, model_name: str, pipeline_job_id: str) -> list[str]:
    """Versions of ``model_name`` registered by the pipeline run ``pipeline_job_id``."""
    check_model_name(model_name)
    if not pipeline_job_id:
        raise KfpCicdError(
            "no pipeline_job_id given: pass dsl.PIPELINE_JOB_ID_PLACEHOLDER so the "
            "versions this run registered can be found"
        )
    client = client_for(tracking_uri)
    try:
        found = client.search_model_versions(f"name='{model_name}'")
    except MlflowException as exc:
        raise RegistryError(f"could not list versions of {model_name} at {tracking_uri}: {exc}") from exc
    return sorted(
        (str(v.version) for v in found if v.tags.get("pipeline_job_id") == pipeline_job_id), key=int
    )


def record_trigger(
    tracking_uri: str,
    model_name: str,
    pipeline_job_id: str,
    decision: RetrainingDecision,
    monitoring_report: str = "",
) -> TriggerRecord:
    """Tag every version this run registered with the decision that triggered its training."""
    versions = versions_of_run(tracking_uri, model_name, pipeline_job_id)
    client = client_for(tracking_uri)
    tags = trigger_tags(decision, monitoring_report)
    try:
        for version in versions:
            for key, value in tags.items():
                client.set_model_version_tag(model_name, version, key, value)
    except MlflowException as exc:
        raise RegistryError(
            f"could not tag {model_name} versions {versions} with the retraining trigger: {exc}"
        ) from exc
    record = TriggerRecord(model_name, tuple(versions), decision.reason)
    log.info("%s", record.summary())
    return record
