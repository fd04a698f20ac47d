"""The deploy task: render the InferenceService, then deploy to the chosen target.

The manifest is always rendered and written (it is the pipeline's record of what runs on the
cluster, and what an operator can ``kubectl apply``). Target ``local`` serves the version on
loopback, smoke-tests it and promotes ``champion`` (``local_target``); target ``kubernetes`` rolls
it out on KServe as a canary with readiness, smoke, error-rate and latency checks, then promotes or
rolls back (``cluster_target``).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kfp_cicd.components.deploy.cluster_target import ClusterRollout, RolloutSettings
from kfp_cicd.components.deploy.inference_service import (
    DEPLOYMENT_MODES,
    render_inference_service,
    service_name_for,
    to_yaml,
)
from kfp_cicd.components.deploy.kube_api import ClusterConnection, InferenceServiceApi, build_api_client
from kfp_cicd.components.deploy.local_target import deploy_locally
from kfp_cicd.components.deploy.vertex_target import (
    VertexClients,
    VertexEndpointOptions,
    VertexEndpointRollout,
)
from kfp_cicd.data.tables import read_table
from kfp_cicd.errors import DeploymentError
from kfp_cicd.parameter_validation import check_gke_cluster, check_model_name
from kfp_cicd.registry.client import storage_location
from kfp_cicd.registry.digest import DIGEST_ENV, registered_digest
from kfp_cicd.registry.retries import RegistryUnavailable, call_with_retries

log = logging.getLogger(__name__)
LOCAL = "local"
KUBERNETES = "kubernetes"
GKE = "gke"
VERTEX_ENDPOINT = "vertex-endpoint"
TARGETS = (KUBERNETES, GKE, VERTEX_ENDPOINT, LOCAL)
SMOKE_ROWS = 5


@dataclass(frozen=True)
class ClusterOptions:
    """Everything the kubernetes target needs beyond the model (all with working defaults)."""

    connection: ClusterConnection = field(default_factory=ClusterConnection)
    service_account: str = ""
    min_replicas: int = 1
    max_replicas: int = 1
    cpu: str = "1"
    memory: str = "2Gi"
    rollout: RolloutSettings = field(default_factory=RolloutSettings)

    def resources(self) -> dict[str, dict[str, str]] | None:
        """Requests = limits (predictable latency); None when both are empty (the runtime's)."""
        values = {key: value for key, value in (("cpu", self.cpu), ("memory", self.memory)) if value}
        return {"requests": dict(values), "limits": dict(values)} if values else None


@dataclass(frozen=True)
class DeployOutcome:
    """What the task reports: where the model answered, the checks, and what happened."""

    endpoint: str
    smoke_summary: str
    rollout: str


def smoke_rows_from_table(eval_data: str, count: int = SMOKE_ROWS) -> list[dict]:
    """The first ``count`` rows of the holdout as dicts (the label is dropped by the targets)."""
    if not eval_data:
        raise DeploymentError("deploying needs eval_data: the smoke test scores its first rows")
    return read_table(eval_data).head(count).to_dict(orient="records")


def write_manifest(manifest: dict, path: str) -> Path:
    """Write the manifest as YAML at ``path`` (creating parent directories)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(to_yaml(manifest), encoding="utf-8")
    return target


def model_input_columns(tracking_uri: str, model_name: str, version: str) -> list[str]:
    """The input column names of the version's MLflow signature (reads only its MLmodel file)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    try:
        info = call_with_retries(
            f"read the signature of {model_name} version {version}",
            lambda: mlflow.models.get_model_info(f"models:/{model_name}/{version}"),
            tracking_uri=tracking_uri,
        )
    except RegistryUnavailable:
        raise
    except Exception as exc:  # mlflow raises various errors for unreachable stores
        raise DeploymentError(
            f"could not read the signature of {model_name} version {version}: {exc}"
        ) from exc
    schema = info.signature.inputs if info.signature is not None else None
    if schema is None or not schema.has_input_names():
        raise DeploymentError(
            f"{model_name} version {version} has no named input signature; register models "
            "saved by kfp_cicd.model.packaging"
        )
    return list(schema.input_names())


def _deploy_to_cluster(
    manifest: dict,
    *,
    tracking_uri: str,
    model_name: str,
    version: str,
    deployment_mode: str,
    rows: list[dict],
    options: ClusterOptions,
) -> DeployOutcome:
    api = InferenceServiceApi(
        build_api_client(options.connection),
        manifest["metadata"]["namespace"],
        rbac_hint=options.connection.rbac_hint,
    )
    try:
        columns = model_input_columns(tracking_uri, model_name, version)
        features = [{column: row[column] for column in columns if column in row} for row in rows]
        rollout = ClusterRollout(
            api,
            manifest,
            mode=deployment_mode,
            model_name=model_name,
            version=version,
            tracking_uri=tracking_uri,
            smoke_rows=features,
            settings=options.rollout,
        )
        report = rollout.run()
    finally:
        api.api_client.close()
    smoke = "; ".join(f"{c['what']}: {c['smoke_summary'] or c['reason']}" for c in report.checks)
    return DeployOutcome(report.url, smoke, report.to_json())


def _deploy_to_vertex_endpoint(
    vertex: VertexEndpointOptions,
    *,
    tracking_uri: str,
    model_name: str,
    version: str,
    artifact_uri: str,
    digest: str,
    image: str,
    rows: list[dict],
    options: ClusterOptions,
) -> DeployOutcome:
    if not artifact_uri.startswith("gs://"):  # refused before any Vertex call
        raise DeploymentError(
            f"Vertex AI serves model files from Cloud Storage, but version {version} of {model_name} is "
            f"stored at {artifact_uri}; use an MLflow artifact root on gs:// (mlflow server "
            "--default-artifact-root gs://BUCKET/...) to deploy to a Vertex AI endpoint"
        )
    columns = model_input_columns(tracking_uri, model_name, version)
    features = [{column: row[column] for column in columns if column in row} for row in rows]
    rollout = VertexEndpointRollout(
        VertexClients(vertex.region, vertex.credentials),
        vertex,
        served_name=service_name_for(model_name),
        model_name=model_name,
        version=version,
        tracking_uri=tracking_uri,
        artifact_uri=artifact_uri,
        digest=digest,
        image=image,
        smoke_rows=features,
        min_replicas=options.min_replicas,
        max_replicas=options.max_replicas,
        settings=options.rollout,
    )
    report = rollout.run()
    smoke = "; ".join(f"{c['what']}: {c['smoke_summary'] or c['reason']}" for c in report.checks)
    return DeployOutcome(report.url, smoke, report.to_json())


def run_deploy_task(
    *,
    tracking_uri: str,
    model_name: str,
    version: str,
    target: str,
    namespace: str,
    runtime_image: str,
    eval_data: str,
    inference_service_path: str,
    deployment_mode: str,
    cluster: ClusterOptions | None = None,
    vertex: VertexEndpointOptions | None = None,
) -> DeployOutcome:
    """The KFP task body. Raises DeploymentError (RolloutFailed after a rollback) with the reason."""
    if target not in TARGETS:
        raise DeploymentError(f"unknown deploy target {target!r}; use one of {', '.join(TARGETS)}")
    if deployment_mode not in DEPLOYMENT_MODES:
        raise DeploymentError(
            f"unknown deployment_mode {deployment_mode!r}; use one of {', '.join(DEPLOYMENT_MODES)}"
        )
    check_model_name(model_name)
    cluster = cluster or ClusterOptions()
    if target == GKE:
        if not cluster.connection.gke_cluster:
            raise DeploymentError(
                "deploy_target=gke needs gke_cluster: the cluster as projects/PROJECT/locations/"
                "LOCATION/clusters/NAME"
            )
        check_gke_cluster(cluster.connection.gke_cluster)
    elif target == VERTEX_ENDPOINT:
        vertex = vertex or VertexEndpointOptions()
        vertex.check(cluster.min_replicas, cluster.max_replicas)
        if not runtime_image:
            raise DeploymentError("deploy_target=vertex-endpoint needs the predictor image (runtime_image)")
    elif cluster.connection.gke_cluster:
        raise DeploymentError(
            f"gke_cluster is set but deploy_target is {target!r}: use deploy_target=gke to deploy "
            "to that cluster, or leave gke_cluster empty"
        )
    name = service_name_for(model_name)
    storage_uri = storage_location(tracking_uri, model_name, version)
    digest = registered_digest(tracking_uri, model_name, version)
    manifest = render_inference_service(
        name=name,
        namespace=namespace,
        storage_uri=storage_uri,
        runtime_image=runtime_image or None,
        deployment_mode=deployment_mode,
        service_account=cluster.service_account or None,
        min_replicas=cluster.min_replicas,
        max_replicas=cluster.max_replicas,
        resources=cluster.resources(),
        labels={"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "kfp-cicd"},
        annotations={"kfp-cicd.io/registered-model": model_name, "kfp-cicd.io/model-version": str(version)},
        env={DIGEST_ENV: digest, "MODEL_VERSION": str(version)},
    )
    written = write_manifest(manifest, inference_service_path)
    log.info("wrote InferenceService %s/%s (storageUri %s) to %s", namespace, name, storage_uri, written)
    rows = smoke_rows_from_table(eval_data)
    if target == VERTEX_ENDPOINT:
        return _deploy_to_vertex_endpoint(
            vertex or VertexEndpointOptions(),
            tracking_uri=tracking_uri,
            model_name=model_name,
            version=str(version),
            artifact_uri=storage_uri,
            digest=digest,
            image=runtime_image,
            rows=rows,
            options=cluster,
        )
    if target in (KUBERNETES, GKE):
        return _deploy_to_cluster(
            manifest,
            tracking_uri=tracking_uri,
            model_name=model_name,
            version=str(version),
            deployment_mode=deployment_mode,
            rows=rows,
            options=cluster,
        )
    with tempfile.TemporaryDirectory(prefix="kfp-cicd-deploy-") as work_dir:
        deployment = deploy_locally(
            tracking_uri=tracking_uri,
            model_name=model_name,
            version=str(version),
            smoke_rows=rows,
            work_dir=work_dir,
        )
    summary = deployment.summary()
    log.info("%s", summary)
    rollout = {
        "outcome": "promoted-locally",
        "version": deployment.version,
        "endpoint": deployment.endpoint,
        "champion": deployment.version,
    }
    return DeployOutcome(deployment.endpoint, summary, json.dumps(rollout, sort_keys=True))
