"""KFP wrapper of the deploy step (logic: ``deployment.py``, ``local_target.py``, ``smoke.py``)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Output
from kfp.dsl.python_component import PythonComponent


def deploy_model(
    tracking_uri: str,
    model_name: str,
    version: str,
    inference_service: Output[Artifact],
    target: str = "local",
    namespace: str = "kfp-cicd",
    runtime_image: str = "",
    eval_data: str = "",
    deployment_mode: str = "Serverless",
) -> NamedTuple("DeployOutputs", [("endpoint", str), ("smoke_summary", str)]):
    """Deploy a registered model version with KServe's predictor and promote it once it serves.

    Renders the KServe InferenceService for the version (storageUri = the version's real storage
    location, runtime = the kfp-cicd ClusterServingRuntime) and writes it as YAML. With target
    "local" it downloads the version, serves it with the same predictor the cluster runs on a
    loopback port, smoke-tests V1 and V2 with the first holdout rows, stops the server and only then
    points the alias champion at the version; any failure leaves the registry unchanged. Target
    "kubernetes" is not implemented yet: the task fails after writing the manifest.

    Args:
        tracking_uri: MLflow tracking URI (sqlite:///… for the embedded default, http://… for a server).
        model_name: Registered model name (the InferenceService name is derived from it).
        version: The model version to deploy, from register_model.
        inference_service: Output. The rendered InferenceService manifest (YAML).
        target: "local" (predictor on loopback + smoke test) or "kubernetes" (not implemented yet).
        namespace: Kubernetes namespace of the InferenceService.
        runtime_image: Serving image overriding the ClusterServingRuntime's (empty: the runtime's).
        eval_data: Holdout data file (CSV or Parquet); its first rows are the smoke test's input.
        deployment_mode: KServe deployment mode: Serverless or RawDeployment.

    Returns:
        endpoint: Where the predictor answered (local: the loopback URL used for the check).
        smoke_summary: The smoke test's outcome: rows, probabilities, latencies, promoted alias.
    """
    from kfp_cicd.components.deploy.deployment import run_deploy_task

    inference_service.metadata.update({"model_name": model_name, "version": version, "target": target,
                                       "namespace": namespace, "deployment_mode": deployment_mode})
    endpoint, smoke_summary = run_deploy_task(
        tracking_uri=tracking_uri, model_name=model_name, version=version, target=target,
        namespace=namespace, runtime_image=runtime_image, eval_data=eval_data,
        inference_service_path=inference_service.path, deployment_mode=deployment_mode)
    # A plain tuple is a valid value for NamedTuple outputs (kfp's executor takes it by position).
    return endpoint, smoke_summary


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(deploy_model, base_image=image, install_kfp_package=False)
