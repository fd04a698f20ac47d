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
    A timeout rolls back too. Target "local": downloads and verifies the version, serves it on
    loopback with the same predictor, smoke-tests it, stops it, then moves champion.

    Args:
        tracking_uri: MLflow tracking URI (sqlite:///… for the embedded default, http://… for a server).
        model_name: Registered model name (the InferenceService name is derived from it).
        version: The model version to deploy, from register_model.
        inference_service: Output. The rendered InferenceService manifest (YAML).
        target: "kubernetes" (KServe canary rollout) or "local" (predictor on loopback + smoke test).
        namespace: Kubernetes namespace of the InferenceService.
        runtime_image: Serving image overriding the ClusterServingRuntime's (empty: the runtime's).
        eval_data: Holdout data file (CSV or Parquet); its first rows are the smoke test's input.
        deployment_mode: KServe deployment mode: Serverless (Knative) or RawDeployment (Standard).
        canary_traffic_percent: Share of traffic (1-100) the new version gets while it is checked.
        service_account: Service account of the predictor (storage credentials for s3:// or gs://).
        min_replicas: Minimum predictor replicas (0 = scale to zero, Serverless only).
        max_replicas: Maximum predictor replicas.
        cpu: CPU request and limit of the predictor (e.g. "1", "500m"; empty: the runtime's).
        memory: Memory request and limit of the predictor (e.g. "2Gi"; empty: the runtime's).
        ready_timeout_seconds: How long each rollout step may take to become Ready before rollback.
        smoke_requests: Single-row requests sent after the smoke test to measure errors and latency.
        max_error_rate: Highest share of failed requests (0-1) the new version may show.
        max_p95_latency_ms: Highest p95 latency (ms) of those requests.
        cluster_host: Kubernetes API server URL; empty: in-cluster service account or kubeconfig.

    Returns:
        endpoint: Where the model answered (kubernetes: the InferenceService URL; local: loopback).
        smoke_summary: What the smoke checks measured.
        rollout: JSON report of what happened (outcome, versions, traffic, checks, every step).
    """
    from kfp_cicd.components.deploy.cluster_target import RolloutSettings
    from kfp_cicd.components.deploy.deployment import ClusterOptions, run_deploy_task
    from kfp_cicd.components.deploy.kube_api import ClusterConnection
    from kfp_cicd.components.deploy.service_check import CheckPolicy

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
        connection=ClusterConnection(host=cluster_host),
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
    )
    # A plain tuple is a valid value for NamedTuple outputs (kfp's executor takes it by position).
    return outcome.endpoint, outcome.smoke_summary, outcome.rollout


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(deploy_model, base_image=image, install_kfp_package=False)
