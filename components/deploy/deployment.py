"""The deploy task: render the InferenceService, then deploy to the chosen target.

The manifest is always rendered and written (it is the pipeline's record of what would run on the
cluster, and what an operator can ``kubectl apply``). Target ``local`` serves the version on
loopback, smoke-tests it and promotes the ``champion`` alias (``local_target``); target
``kubernetes`` is not implemented yet and fails loudly instead of pretending.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from kfp_cicd.components.deploy.inference_service import (
    DEPLOYMENT_MODES,
    render_inference_service,
    service_name_for,
    to_yaml,
)
from kfp_cicd.components.deploy.local_target import deploy_locally
from kfp_cicd.components.register import registry
from kfp_cicd.data.tables import read_table
from kfp_cicd.errors import DeploymentError

log = logging.getLogger(__name__)
LOCAL = "local"
KUBERNETES = "kubernetes"
TARGETS = (LOCAL, KUBERNETES)
SMOKE_ROWS = 5
KUBERNETES_NOT_READY = ("cluster deployment arrives with the deploy issue; use target=local or apply the "
                        "rendered manifest")


def smoke_rows_from_table(eval_data: str, count: int = SMOKE_ROWS) -> list[dict]:
    """The first ``count`` rows of the holdout as dicts (the label is dropped by the local target)."""
    if not eval_data:
        raise DeploymentError("target=local needs eval_data: the smoke test scores its first rows")
    return read_table(eval_data).head(count).to_dict(orient="records")


def write_manifest(manifest: dict, path: str) -> Path:
    """Write the manifest as YAML at ``path`` (creating parent directories)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(to_yaml(manifest), encoding="utf-8")
    return target


def run_deploy_task(*, tracking_uri: str, model_name: str, version: str, target: str, namespace: str,
                    runtime_image: str, eval_data: str, inference_service_path: str,
                    deployment_mode: str) -> tuple[str, str]:
    """The KFP task body; returns (endpoint, smoke_summary)."""
    if target not in TARGETS:
        raise DeploymentError(f"unknown deploy target {target!r}; use one of {', '.join(TARGETS)}")
    if deployment_mode not in DEPLOYMENT_MODES:
        raise DeploymentError(f"unknown deployment_mode {deployment_mode!r}; use one of "
                              f"{', '.join(DEPLOYMENT_MODES)}")
    registry.check_model_name(model_name)
    name = service_name_for(model_name)
    storage_uri = registry.storage_location(tracking_uri, model_name, version)
    manifest = render_inference_service(
        name=name, namespace=namespace, storage_uri=storage_uri, runtime_image=runtime_image or None,
        deployment_mode=deployment_mode,
        labels={"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "kfp-cicd"},
        annotations={"kfp-cicd.io/registered-model": model_name, "kfp-cicd.io/model-version": str(version)})
    written = write_manifest(manifest, inference_service_path)
    log.info("wrote InferenceService %s/%s (storageUri %s) to %s", namespace, name, storage_uri, written)
    if target == KUBERNETES:
        raise DeploymentError(KUBERNETES_NOT_READY)
    rows = smoke_rows_from_table(eval_data)
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-deploy-") as work_dir:
        deployment = deploy_locally(tracking_uri=tracking_uri, model_name=model_name, version=str(version),
                                    smoke_rows=rows, work_dir=work_dir)
    summary = deployment.summary()
    log.info("%s", summary)
    return deployment.endpoint, summary
