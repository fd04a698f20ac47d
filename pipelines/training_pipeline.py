"""The training pipeline: validate → train → evaluate → (if approved) register → deploy.

One graph, three ways to run it:
- ``local``: ``kfp.local`` on this machine (no platform config);
- ``kubeflow``: Kubeflow Pipelines, with the training task's GPU request, tolerations and node
  selector, and MLflow credentials from an optional Secret, through kfp-kubernetes;
- ``vertex``: Vertex AI Pipelines, which rejects the kfp-kubernetes platform spec; the GPU is asked
  for with Vertex accelerator names instead.
"""

from dataclasses import dataclass
from enum import StrEnum

from kfp import dsl, kubernetes
from kfp.dsl.graph_component import GraphComponent

from kfp_cicd.components.deploy.component import build_component as build_deploy
from kfp_cicd.components.evaluate.component import build_component as build_evaluate
from kfp_cicd.components.register.component import build_component as build_register
from kfp_cicd.components.train.component import build_component as build_train
from kfp_cicd.components.validate_data.component import build_component as build_validate
from kfp_cicd.images import ImageRefs

PIPELINE_NAME = "kfp-cicd-training"
MLFLOW_SECRET = "mlflow-credentials"  # optional Secret; keys become the env MLflow clients read


class Target(StrEnum):
    LOCAL = "local"
    KUBEFLOW = "kubeflow"
    VERTEX = "vertex"


@dataclass(frozen=True)
class TrainingResources:
    """What the training task asks the platform for."""

    gpus: int = 1
    kubeflow_accelerator: str = "nvidia.com/gpu"
    vertex_accelerator: str = "NVIDIA_L4"
    cpu: str = "4"
    memory: str = "16G"
    gpu_node_selector: tuple[tuple[str, str], ...] = ()


def _configure_training_task(task: dsl.PipelineTask, target: Target,
                             resources: TrainingResources) -> None:
    if target is Target.LOCAL:
        return
    task.set_cpu_limit(resources.cpu).set_memory_limit(resources.memory)
    if resources.gpus < 1:
        return
    if target is Target.KUBEFLOW:
        task.set_accelerator_type(resources.kubeflow_accelerator).set_accelerator_limit(resources.gpus)
        kubernetes.add_toleration(task, key=resources.kubeflow_accelerator, operator="Exists",
                                  effect="NoSchedule")
        for label_key, label_value in resources.gpu_node_selector:
            kubernetes.add_node_selector(task, label_key=label_key, label_value=label_value)
    else:
        task.set_accelerator_type(resources.vertex_accelerator).set_accelerator_limit(resources.gpus)


def _use_mlflow_credentials(task: dsl.PipelineTask, target: Target) -> None:
    """On Kubeflow, MLflow/S3 credentials come from an optional Secret, never from parameters."""
    if target is not Target.KUBEFLOW:
        return
    kubernetes.use_secret_as_env(
        task, secret_name=MLFLOW_SECRET, optional=True,
        secret_key_to_env={"MLFLOW_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME",
                           "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD",
                           "MLFLOW_TRACKING_TOKEN": "MLFLOW_TRACKING_TOKEN",
                           "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
                           "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"})


def build_training_pipeline(images: ImageRefs | None = None, target: Target | str = Target.LOCAL,
                            resources: TrainingResources | None = None) -> GraphComponent:
    """The training pipeline with components on ``images``, configured for ``target``."""
    images = images or ImageRefs()
    target = Target(target)
    resources = resources or TrainingResources()
    validate_op = build_validate(images.validation)
    train_op = build_train(images.runtime)
    evaluate_op = build_evaluate(images.runtime)
    register_op = build_register(images.runtime)
    deploy_op = build_deploy(images.runtime)

    @dsl.pipeline(name=PIPELINE_NAME,
                  description="Validate data (TFDV), train with PyTorch DDP, evaluate against a quality "
                              "gate, register in MLflow and deploy on KServe.")
    def training_pipeline(
        train_data: str,
        eval_data: str,
        mlflow_tracking_uri: str,
        label_column: str = "is_fraud",
        schema_path: str = "",
        model_name: str = "fraud-detector",
        epochs: int = 8,
        batch_size: int = 512,
        learning_rate: float = 0.002,
        num_processes: int = 2,
        decision_threshold: float = 0.5,
        seed: int = 0,
        min_roc_auc: float = 0.8,
        min_pr_auc: float = 0.2,
        max_log_loss: float = -1.0,
        deploy_target: str = "kubernetes",
        namespace: str = "kfp-cicd",
        deployment_mode: str = "Serverless",
    ):
        """Train, gate and ship a binary classifier for tabular data.

        Args:
            train_data: Training data (CSV/Parquet; local path, gs:// or s3://) with the label column.
            eval_data: Holdout data with the label column, used for validation and the gate.
            mlflow_tracking_uri: MLflow tracking server (http://…) or store (sqlite:///…).
            label_column: Name of the 0/1 label column.
            schema_path: TFDV schema (.pbtxt) to validate against; empty: infer from train_data.
            model_name: Registered model name in MLflow (also the InferenceService name).
            epochs: Training epochs.
            batch_size: Rows per step on each worker.
            learning_rate: AdamW learning rate.
            num_processes: CPU workers when no GPU is present (one per GPU otherwise).
            decision_threshold: Probability above which the model predicts the positive class.
            seed: Random seed.
            min_roc_auc: Gate: lowest holdout ROC AUC (negative disables).
            min_pr_auc: Gate: lowest holdout PR AUC (negative disables).
            max_log_loss: Gate: highest holdout log loss (negative disables).
            deploy_target: "kubernetes" (KServe InferenceService) or "local" (predictor on loopback).
            namespace: Kubernetes namespace of the InferenceService.
            deployment_mode: KServe deployment mode: Serverless or RawDeployment.
        """
        validate = validate_op(train_data=train_data, eval_data=eval_data, label_column=label_column,
                               schema_path=schema_path).set_display_name("validate data")
        train = train_op(train_data=train_data, schema=validate.outputs["schema"], epochs=epochs,
                         batch_size=batch_size, learning_rate=learning_rate,
                         num_processes=num_processes, decision_threshold=decision_threshold,
                         seed=seed).set_display_name("train (PyTorch DDP)")
        _configure_training_task(train, target, resources)
        evaluate = evaluate_op(eval_data=eval_data, model=train.outputs["model"],
                               min_roc_auc=min_roc_auc, min_pr_auc=min_pr_auc,
                               max_log_loss=max_log_loss).set_display_name("evaluate + gate")
        # The gate is evaluate's single return value: kfp.local (2.17) resolves a condition on a task's
        # "Output" but treats a named NamedTuple output as a missing parent input and skips the branch.
        with dsl.If(evaluate.outputs["Output"] == True, name="gate-approved"):  # noqa: E712
            register = register_op(
                model=train.outputs["model"], evaluation_metrics=evaluate.outputs["metrics"],
                decision=evaluate.outputs["decision"], tracking_uri=mlflow_tracking_uri,
                model_name=model_name, data_fingerprint=validate.outputs["data_fingerprint"],
                train_data=train_data, pipeline_job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                pipeline_job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER).set_display_name("register (MLflow)")
            _use_mlflow_credentials(register, target)
            deploy = deploy_op(
                tracking_uri=mlflow_tracking_uri, model_name=model_name,
                version=register.outputs["version"], target=deploy_target, namespace=namespace,
                runtime_image=images.runtime, eval_data=eval_data,
                deployment_mode=deployment_mode).set_display_name("deploy (KServe)")
            _use_mlflow_credentials(deploy, target)
        for task in (register, deploy):
            task.set_caching_options(False)  # they change the registry / serving state

    return training_pipeline
