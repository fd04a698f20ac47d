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
from kfp_cicd.components.train.vertex import VertexTrainingCluster, build_vertex_component
from kfp_cicd.components.train_pytorchjob.component import build_component as build_pytorchjob
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
    # Vertex: more than one replica compiles training as a custom job with worker pools.
    vertex_replica_count: int = 2
    vertex_machine_type: str = "g2-standard-8"
    # Kubeflow: more than one node trains as a PyTorchJob sharing a ReadWriteMany PVC.
    kubeflow_nodes: int = 1
    shared_pvc: str = ""
    shared_mount_path: str = "/mnt/shared"

    def __post_init__(self) -> None:
        if self.kubeflow_nodes > 1 and not self.shared_pvc:
            raise ValueError("multi-node training on Kubeflow needs shared_pvc: a ReadWriteMany "
                             "PersistentVolumeClaim the launcher and the job's pods share")
        if self.gpus < 0 or self.vertex_replica_count < 1 or self.kubeflow_nodes < 1:
            raise ValueError("gpus must be >= 0, vertex_replica_count and kubeflow_nodes >= 1")

    @property
    def vertex_custom_job(self) -> bool:
        return self.vertex_replica_count > 1

    @property
    def kubeflow_multi_node(self) -> bool:
        return self.kubeflow_nodes > 1


def _configure_training_task(task: dsl.PipelineTask, target: Target,
                             resources: TrainingResources) -> None:
    if target is Target.LOCAL:
        return
    if target is Target.VERTEX and resources.vertex_custom_job:
        return  # machine type and accelerators are the custom job's worker pool settings
    if target is Target.KUBEFLOW and resources.kubeflow_multi_node:
        kubernetes.mount_pvc(task, pvc_name=resources.shared_pvc, mount_path=resources.shared_mount_path)
        return  # the launcher needs no GPU: the PyTorchJob's pods ask for them
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


def use_mlflow_credentials(task: dsl.PipelineTask, target: Target) -> None:
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


IMAGE_USER = 1000  # the non-root user of the project's images (images/*/Dockerfile)


def run_as_image_user(task: dsl.PipelineTask, target: Target) -> None:
    """On Kubeflow, the task's container runs as the images' non-root user, never as root.

    kfp-kubernetes sets runAsUser/runAsGroup/runAsNonRoot (the KFP backend adds no privilege
    escalation, drop ALL and RuntimeDefault seccomp); the read-only root filesystem is left to the
    namespace's Pod Security Admission (manifests/namespace/). Vertex rejects the platform spec.
    """
    if target is Target.KUBEFLOW:
        kubernetes.set_security_context(task, run_as_user=IMAGE_USER, run_as_group=IMAGE_USER,
                                        run_as_non_root=True)


def build_training_pipeline(images: ImageRefs | None = None, target: Target | str = Target.LOCAL,
                            resources: TrainingResources | None = None) -> GraphComponent:
    """The training pipeline with components on ``images``, configured for ``target``."""
    images = images or ImageRefs()
    target = Target(target)
    resources = resources or TrainingResources()
    validate_op = build_validate(images.validation)
    train_op = build_train(images.runtime)
    if target is Target.VERTEX and resources.vertex_custom_job:
        train_op = build_vertex_component(images.runtime, VertexTrainingCluster(
            replica_count=resources.vertex_replica_count, machine_type=resources.vertex_machine_type,
            accelerator_type=resources.vertex_accelerator if resources.gpus else "",
            accelerator_count=max(resources.gpus, 1)))
    multi_node = target is Target.KUBEFLOW and resources.kubeflow_multi_node
    pytorchjob_op = build_pytorchjob(images.runtime) if multi_node else None
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
        tolerate_anomalies: str = "",
        baseline_statistics: str = "",
        drift_thresholds: str = "",
        drift_default_threshold: float = 0.1,
        validation_processing: str = "auto",
        beam_options: str = "",
        beam_threshold_mb: float = 1024.0,
        sample_rate: float = 1.0,
        min_recall_at_precision: float = -1.0,
        target_precision: float = 0.5,
        min_f1: float = -1.0,
        max_ece: float = -1.0,
        champion_metrics: str = "roc_auc,pr_auc",
        champion_margin: float = 0.01,
        slice_keys: str = "country,channel,amount",
        max_recall_gap: float = -1.0,
        max_fpr_gap: float = -1.0,
        min_slice_rows: int = 200,
        min_slice_positives: int = 10,
        cost_false_negative: float = 30.0,
        cost_false_positive: float = 1.0,
        max_latency_ms_per_1k_rows: float = -1.0,
        max_model_size_mb: float = -1.0,
        approved_by: str = "",
        canary_traffic_percent: int = 10,
        service_account: str = "",
        min_replicas: int = 1,
        max_replicas: int = 1,
        serving_cpu: str = "1",
        serving_memory: str = "2Gi",
        ready_timeout_seconds: int = 600,
        smoke_requests: int = 20,
        max_error_rate: float = 0.0,
        max_p95_latency_ms: float = 1000.0,
        trigger_reason: str = "",
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
            tolerate_anomalies: Comma-separated TFDV anomaly kinds that do not fail validation.
            baseline_statistics: TFDV statistics (.pb) to check drift against, e.g. the champion's
                training statistics; empty: no drift check.
            drift_thresholds: JSON object of per-feature drift thresholds, e.g. {"amount": 0.3}.
            drift_default_threshold: Drift threshold for features not in drift_thresholds
                (L-infinity for categorical, Jensen-Shannon divergence for numeric features).
            validation_processing: "auto", "in_memory" or "beam" statistics computation.
            beam_options: Apache Beam pipeline options for large data, e.g.
                "--runner=DataflowRunner --project=p --region=r --temp_location=gs://b/tmp".
            beam_threshold_mb: In "auto", files larger than this go through Beam (when a runner
                is given in beam_options).
            sample_rate: Fraction of rows TFDV samples for statistics (1.0: all).
            min_recall_at_precision: Gate: lowest recall at target_precision (negative disables).
            target_precision: Precision at which recall is measured for min_recall_at_precision.
            min_f1: Gate: lowest F1 at the operating threshold (negative disables).
            max_ece: Gate: highest expected calibration error (negative disables).
            champion_metrics: Metrics on which the candidate must not be worse than the model
                behind the MLflow alias "champion" (comma-separated; empty disables).
            champion_margin: How much worse than the champion the candidate may be.
            slice_keys: Columns to report metrics per segment for (numeric columns in quartile
                bands; "amount:50|200|1000" for explicit bands).
            max_recall_gap: Gate: largest recall gap between segments (negative disables).
            max_fpr_gap: Gate: largest false-positive-rate gap between segments (negative disables).
            min_slice_rows: Segments with fewer rows are reported but not gated.
            min_slice_positives: Segments with fewer positives are reported but not gated.
            cost_false_negative: Cost of a missed positive (fraud); with cost_false_positive it picks
                the operating threshold shipped with the model (-1: keep decision_threshold).
            cost_false_positive: Cost of a false alarm.
            max_latency_ms_per_1k_rows: Gate: prediction latency budget (negative disables).
            max_model_size_mb: Gate: model size budget (negative disables).
            approved_by: Who approves this release (recorded in the audit record).
            canary_traffic_percent: Share of traffic a new version gets while it is checked, before
                it is promoted to 100 % or rolled back to 0 %.
            service_account: Service account of the predictor (storage credentials).
            min_replicas: Minimum predictor replicas (0 allowed in Serverless mode).
            max_replicas: Maximum predictor replicas.
            serving_cpu: CPU request/limit of the predictor.
            serving_memory: Memory request/limit of the predictor.
            ready_timeout_seconds: How long to wait for the InferenceService to become Ready before
                rolling back.
            smoke_requests: Single-row requests sent to the new version to measure errors/latency.
            max_error_rate: Highest tolerated error rate of those requests.
            max_p95_latency_ms: Highest tolerated p95 latency of those requests.
            trigger_reason: Why this run was started (set by the monitoring pipeline; version tag
                retraining_reason).
        """
        validate = validate_op(
            train_data=train_data, eval_data=eval_data, label_column=label_column,
            schema_path=schema_path, tolerate_anomalies=tolerate_anomalies,
            baseline_statistics=baseline_statistics, drift_thresholds=drift_thresholds,
            drift_default_threshold=drift_default_threshold, processing=validation_processing,
            beam_options=beam_options, beam_threshold_mb=beam_threshold_mb,
            sample_rate=sample_rate).set_display_name("validate data")
        hyperparameters = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                               num_processes=num_processes, decision_threshold=decision_threshold,
                               seed=seed)
        if pytorchjob_op is not None:
            train = pytorchjob_op(
                train_data=train_data, schema=validate.outputs["schema"], worker_image=images.runtime,
                shared_pvc=resources.shared_pvc, shared_mount_path=resources.shared_mount_path,
                namespace=namespace, workers=resources.kubeflow_nodes - 1,
                gpus_per_worker=resources.gpus, gpu_resource=resources.kubeflow_accelerator,
                **hyperparameters)
        else:
            train = train_op(train_data=train_data, schema=validate.outputs["schema"], **hyperparameters)
        train.set_display_name("train (PyTorch DDP)")
        _configure_training_task(train, target, resources)
        evaluate = evaluate_op(
            eval_data=eval_data, model=train.outputs["model"], schema=validate.outputs["schema"],
            min_roc_auc=min_roc_auc, min_pr_auc=min_pr_auc, max_log_loss=max_log_loss,
            min_recall_at_precision=min_recall_at_precision, target_precision=target_precision,
            min_f1=min_f1, max_ece=max_ece, tracking_uri=mlflow_tracking_uri, model_name=model_name,
            champion_metrics=champion_metrics, champion_margin=champion_margin,
            slice_keys=slice_keys, max_recall_gap=max_recall_gap, max_fpr_gap=max_fpr_gap,
            min_slice_rows=min_slice_rows, min_slice_positives=min_slice_positives,
            cost_false_negative=cost_false_negative, cost_false_positive=cost_false_positive,
            max_latency_ms_per_1k_rows=max_latency_ms_per_1k_rows,
            max_model_size_mb=max_model_size_mb, train_data=train_data,
            data_fingerprint=validate.outputs["data_fingerprint"],
            image_refs=f"runtime={images.runtime},validation={images.validation}",
            approved_by=approved_by, pipeline_job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            pipeline_job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER).set_display_name("evaluate + gate")
        use_mlflow_credentials(evaluate, target)  # it compares with the registry's champion
        # The gate is evaluate's single return value: kfp.local (2.17) resolves a condition on a task's
        # "Output" but treats a named NamedTuple output as a missing parent input and skips the branch.
        with dsl.If(evaluate.outputs["Output"] == True, name="gate-approved"):  # noqa: E712
            register = register_op(
                model=evaluate.outputs["operating_model"], evaluation_metrics=evaluate.outputs["metrics"],
                decision=evaluate.outputs["decision"], audit_record=evaluate.outputs["audit_record"],
                model_card=evaluate.outputs["model_card"], report=evaluate.outputs["report"],
                statistics=validate.outputs["statistics"], trigger_reason=trigger_reason,
                tracking_uri=mlflow_tracking_uri,
                model_name=model_name, data_fingerprint=validate.outputs["data_fingerprint"],
                train_data=train_data, pipeline_job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                pipeline_job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER).set_display_name("register (MLflow)")
            use_mlflow_credentials(register, target)
            deploy = deploy_op(
                tracking_uri=mlflow_tracking_uri, model_name=model_name,
                version=register.outputs["version"], target=deploy_target, namespace=namespace,
                runtime_image=images.predictor, eval_data=eval_data, deployment_mode=deployment_mode,
                canary_traffic_percent=canary_traffic_percent, service_account=service_account,
                min_replicas=min_replicas, max_replicas=max_replicas, cpu=serving_cpu,
                memory=serving_memory, ready_timeout_seconds=ready_timeout_seconds,
                smoke_requests=smoke_requests, max_error_rate=max_error_rate,
                max_p95_latency_ms=max_p95_latency_ms).set_display_name("deploy (KServe)")
            use_mlflow_credentials(deploy, target)
        # Caching, task by task (KFP reuses a cached task's outputs when its inputs are the same):
        # validate and train are pure functions of their inputs, so a re-run after a failure (a
        # lost training pod, a failed deploy) reuses them instead of redoing them. This assumes a
        # data location's contents do not change: give new data a new path, or submit with
        # --no-cache. evaluate reads the registry's current champion; register and deploy move
        # aliases and serving traffic: these must run every time, never be skipped.
        for task in (validate, train):
            task.set_caching_options(True)
        for task in (evaluate, register, deploy):
            task.set_caching_options(False)
        for task in (validate, train, evaluate, register, deploy):
            run_as_image_user(task, target)

    return training_pipeline
