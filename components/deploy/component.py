"""KFP wrapper of the deploy step (logic: ``deployment.py``, ``cluster_target.py``, ``local_target.py``)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Output
from kfp.dsl.python_component import PythonComponent


def deploy_model(
    tracking_uri: str,
    model_name: str,
    version: str,
    inference_service: Output[Artifact],
    target: str = "kubernetes",
    namespace: str = "kfp-cicd",
    runtime_image: str = "",
    eval_data: str = "",
    deployment_mode: str = "Serverless",
    canary_traffic_percent: int = 10,
    service_account: str = "",
    min_replicas: int = 1,
    max_replicas: int = 1,
    cpu: str = "1",
    memory: str = "2Gi",
    ready_timeout_seconds: int = 600,
    smoke_requests: int = 20,
    max_error_rate: float = 0.0,
    max_p95_latency_ms: float = 1000.0,
    cluster_host: str = "",
    gke_cluster: str = "",
    vertex_endpoint: str = "",
    vertex_machine_type: str = "n1-standard-2",
    vertex_accelerator_type: str = "",
    vertex_accelerator_count: int = 1,
    mlflow_secrets: str = "",
) -> NamedTuple("DeployOutputs", [("endpoint", str), ("smoke_summary", str), ("rollout", str)]):
    """Deploy a registered model version with KServe's predictor; promote it only once it serves.

    Renders the KServe InferenceService for the version (storageUri = the version's real storage
    location, runtime = the kfp-cicd ClusterServingRuntime, MODEL_DIGEST = the registry's digest,
    which the predictor verifies at load) and writes it as YAML.

    Target "kubernetes": creates the InferenceService, or rolls the version out as a canary at
    canary_traffic_percent % beside the current one; waits for Ready with observedGeneration caught
    up; sends smoke requests (V1 and V2) and smoke_requests more through the service URL, checking
    error rate and p95 latency; then promotes to 100 % and moves the MLflow alias champion, or rolls
    back (canary 0 %, the previous version keeps all traffic) and fails the task with the reason.
    A timeout rolls back too. Target "gke" (e.g. from Vertex AI Pipelines): the same rollout on the
    GKE cluster gke_cluster, whose endpoint and CA certificate come from the GKE API; the task
    authenticates with its Google service account's access token, renewed when it expires.
    Target "vertex-endpoint": uploads the version to the Vertex AI Model Registry (a new version of
    the Vertex model named after model_name) with the predictor image as its serving container,
    deploys it to vertex_endpoint beside the current model at canary_traffic_percent %, smoke-checks
    it through the endpoint's predict calls, then moves all traffic to it and undeploys the old
    model, and only then moves champion; or sends all traffic back and undeploys it.
    Target "local": downloads and verifies the version, serves it on loopback with the same
    predictor, smoke-tests it, stops it, then moves champion.

    Args:
        tracking_uri: MLflow tracking URI (sqlite:///… for the embedded default, http://… for a server).
        model_name: Registered model name (the InferenceService name is derived from it).
        version: The model version to deploy, from register_model.
        inference_service: Output. The rendered InferenceService manifest (YAML).
        target: "kubernetes" (KServe canary rollout), "gke" (the same on a GKE cluster, from Vertex),
            "vertex-endpoint" (Vertex AI Endpoint canary) or "local" (predictor on loopback + smoke test).
        namespace: Kubernetes namespace of the InferenceService.
        runtime_image: Serving image overriding the ClusterServingRuntime's (empty: the runtime's).
        eval_data: Holdout data file (CSV or Parquet); its first rows are the smoke test's input.
        deployment_mode: KServe deployment mode: Serverless (Knative) or RawDeployment (Standard).
        canary_traffic_percent: Share of traffic (1-100) the new version gets while it is checked.
        service_account: Service account of the predictor (storage credentials for s3:// or gs://).
        min_replicas: Minimum predictor replicas (0 = scale to zero, Serverless only; at least 1 on a
            Vertex endpoint).
        max_replicas: Maximum predictor replicas (KServe or Vertex endpoint).
        cpu: CPU request and limit of the predictor (e.g. "1", "500m"; empty: the runtime's).
        memory: Memory request and limit of the predictor (e.g. "2Gi"; empty: the runtime's).
        ready_timeout_seconds: How long each rollout step may take to become Ready before rollback.
        smoke_requests: Single-row requests sent after the smoke test to measure errors and latency.
        max_error_rate: Highest share of failed requests (0-1) the new version may show.
        max_p95_latency_ms: Highest p95 latency (ms) of those requests.
        cluster_host: Kubernetes API server URL; empty: in-cluster service account or kubeconfig.
        gke_cluster: Target "gke": the cluster as projects/PROJECT/locations/LOCATION/clusters/NAME.
        vertex_endpoint: Target "vertex-endpoint": projects/PROJECT/locations/REGION/endpoints/ID
            (created with that ID when it does not exist).
        vertex_machine_type: Target "vertex-endpoint": machine type of the serving nodes.
        vertex_accelerator_type: Target "vertex-endpoint": accelerator per node (e.g. NVIDIA_L4;
            empty: none).
        vertex_accelerator_count: Target "vertex-endpoint": accelerators per node when a type is given.
        mlflow_secrets: MLflow credentials from Google Secret Manager, read at task start:
            ENV=projects/P/secrets/S/versions/latest pairs, comma-separated (ENV one of
            MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_TOKEN,
            AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); secret names only, never values. Empty: none
            (on Kubeflow the Secret mlflow-credentials provides them).

    Returns:
        endpoint: Where the model answered (kubernetes/gke: the InferenceService URL; vertex-endpoint:
            the Endpoint's resource name; local: loopback).
        smoke_summary: What the smoke checks measured.
        rollout: JSON report of what happened (outcome, versions, traffic, checks, every step).
    """
    from kfp_cicd.gcp.secret_manager import load_mlflow_credentials

    load_mlflow_credentials(mlflow_secrets)  # before anything talks to MLflow

    from kfp_cicd.components.deploy.cluster_target import RolloutSettings
    from kfp_cicd.components.deploy.deployment import ClusterOptions, run_deploy_task
    from kfp_cicd.components.deploy.kube_api import ClusterConnection
    from kfp_cicd.components.deploy.service_check import CheckPolicy
    from kfp_cicd.components.deploy.vertex_target import VertexEndpointOptions

    inference_service.metadata.update(
        {
            "model_name": model_name,
            "version": version,
            "target": target,
            "namespace": namespace,
            "deployment_mode": deployment_mode,
        }
    )
    cluster = ClusterOptions(
        connection=ClusterConnection(host=cluster_host, gke_cluster=gke_cluster),
        service_account=service_account,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        cpu=cpu,
        memory=memory,
        rollout=RolloutSettings(
            canary_percent=canary_traffic_percent,
            ready_timeout=float(ready_timeout_seconds),
            checks=CheckPolicy(
                requests=smoke_requests, max_error_rate=max_error_rate, max_p95_latency_ms=max_p95_latency_ms
            ),
        ),
    )
    outcome = run_deploy_task(
        tracking_uri=tracking_uri,
        model_name=model_name,
        version=version,
        target=target,
        namespace=namespace,
        runtime_image=runtime_image,
        eval_data=eval_data,
        inference_service_path=inference_service.path,
        deployment_mode=deployment_mode,
        cluster=cluster,
        vertex=VertexEndpointOptions(
            endpoint=vertex_endpoint,
            machine_type=vertex_machine_type,
            accelerator_type=vertex_accelerator_type,
            accelerator_count=vertex_accelerator_count,
        ),
    )
    # A plain tuple is a valid value for NamedTuple outputs (kfp's executor takes it by position).
    return outcome.endpoint, outcome.smoke_summary, outcome.rollout


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(deploy_model, base_image=image, install_kfp_package=False)
