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
from kfp_cicd.components.validate_data.component import build_reference_component
from kfp_cicd.images import ImageRefs
from kfp_cicd.pipelines.parameters import (
    DEPLOY,
    EVALUATE,
    REFERENCE,
    REGISTER,
    TRAIN,
    TRAINING_PIPELINE,
    VALIDATE,
    component_arguments,
    declare_pipeline_function,
)

PIPELINE_NAME = "kfp-cicd-training"
DESCRIPTION = (
    "Validate data (TFDV), train with PyTorch DDP, evaluate against a quality gate and a "
    "baseline, register in MLflow and deploy on KServe."
)
SUMMARY = "Train, gate and ship a binary classifier for tabular data."
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
            raise ValueError(
                "multi-node training on Kubeflow needs shared_pvc: a ReadWriteMany "
                "PersistentVolumeClaim the launcher and the job's pods share"
            )
        if self.gpus < 0 or self.vertex_replica_count < 1 or self.kubeflow_nodes < 1:
            raise ValueError("gpus must be >= 0, vertex_replica_count and kubeflow_nodes >= 1")

    @property
    def vertex_custom_job(self) -> bool:
        return self.vertex_replica_count > 1

    @property
    def kubeflow_multi_node(self) -> bool:
        return self.kubeflow_nodes > 1


def _configure_training_task(task: dsl.PipelineTask, target: Target, resources: TrainingResources) -> None:
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
        kubernetes.add_toleration(
            task, key=resources.kubeflow_accelerator, operator="Exists", effect="NoSchedule"
        )
        for label_key, label_value in resources.gpu_node_selector:
            kubernetes.add_node_selector(task, label_key=label_key, label_value=label_value)
    else:
        task.set_accelerator_type(resources.vertex_accelerator).set_accelerator_limit(resources.gpus)


def use_mlflow_credentials(task: dsl.PipelineTask, target: Target) -> None:
    """On Kubeflow, MLflow/S3 credentials come from an optional Secret, never from parameters.

    On Vertex there is no Kubernetes Secret: the parameter ``mlflow_secrets`` names Secret Manager
    secret versions (names only), which each MLflow-facing task reads at start
    (``kfp_cicd.gcp.secret_manager.load_mlflow_credentials``) with the job's service account.
    """
    if target is not Target.KUBEFLOW:
        return
    kubernetes.use_secret_as_env(
        task,
        secret_name=MLFLOW_SECRET,
        optional=True,
        secret_key_to_env={
            "MLFLOW_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME",
            "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD",
            "MLFLOW_TRACKING_TOKEN": "MLFLOW_TRACKING_TOKEN",
            "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
        },
    )


IMAGE_USER = 1000  # the non-root user of the project's images (images/*/Dockerfile)


def run_as_image_user(task: dsl.PipelineTask, target: Target) -> None:
    """On Kubeflow, the task's container runs as the images' non-root user, never as root.

    kfp-kubernetes sets runAsUser/runAsGroup/runAsNonRoot (the KFP backend adds no privilege
    escalation, drop ALL and RuntimeDefault seccomp); the read-only root filesystem is left to the
    namespace's Pod Security Admission (manifests/namespace/). Vertex rejects the platform spec.
    """
    if target is Target.KUBEFLOW:
        kubernetes.set_security_context(
            task, run_as_user=IMAGE_USER, run_as_group=IMAGE_USER, run_as_non_root=True
        )


def build_training_pipeline(
    images: ImageRefs | None = None,
    target: Target | str = Target.LOCAL,
    resources: TrainingResources | None = None,
) -> GraphComponent:
    """The training pipeline with components on ``images``, configured for ``target``."""
    images = images or ImageRefs()
    target = Target(target)
    resources = resources or TrainingResources()
    validate_op = build_validate(images.validation)
    reference_op = build_reference_component(images.validation)
    # Every task or pod that asks for an accelerator runs the CUDA runtime image; all others the CPU ones.
    training_image = images.training(resources.gpus if target is not Target.LOCAL else 0)
    train_op = build_train(training_image)
    if target is Target.VERTEX and resources.vertex_custom_job:
        train_op = build_vertex_component(
            training_image,
            VertexTrainingCluster(
                replica_count=resources.vertex_replica_count,
                machine_type=resources.vertex_machine_type,
                accelerator_type=resources.vertex_accelerator if resources.gpus else "",
                accelerator_count=max(resources.gpus, 1),
            ),
        )
    multi_node = target is Target.KUBEFLOW and resources.kubeflow_multi_node
    pytorchjob_op = build_pytorchjob(images.runtime) if multi_node else None
    evaluate_op = build_evaluate(images.runtime)
    register_op = build_register(images.runtime)
    deploy_op = build_deploy(images.runtime)

    def train_and_ship(p: dict) -> None:
        """The graph: validate → train → evaluate → (if approved) register → deploy."""
        # The champion's data contract, named (never cached): validate_data's cache key includes it, so
        # a re-run reuses validation (and training) only while the champion's contract is the same.
        reference = reference_op(**component_arguments(REFERENCE, p)).set_display_name(
            "data contract reference"
        )
        use_mlflow_credentials(reference, target)
        validate = validate_op(
            **component_arguments(VALIDATE, p),
            pipeline_job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            reference=reference.output,
        ).set_display_name("validate data")
        use_mlflow_credentials(validate, target)  # it reads the champion's data contract
        if pytorchjob_op is not None:
            train = pytorchjob_op(
                **component_arguments("pytorchjob", p),
                schema=validate.outputs["schema"],
                worker_image=training_image,
                shared_pvc=resources.shared_pvc,
                shared_mount_path=resources.shared_mount_path,
                workers=resources.kubeflow_nodes - 1,
                gpus_per_worker=resources.gpus,
                gpu_resource=resources.kubeflow_accelerator,
            )
        else:
            train = train_op(**component_arguments(TRAIN, p), schema=validate.outputs["schema"])
        train.set_display_name("train (PyTorch DDP)")
        _configure_training_task(train, target, resources)
        evaluate = evaluate_op(
            **component_arguments(EVALUATE, p),
            model=train.outputs["model"],
            schema=validate.outputs["schema"],
            data_fingerprint=validate.outputs["data_fingerprint"],
            image_refs=f"runtime={images.runtime},validation={images.validation},training={training_image}",
            pipeline_job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            pipeline_job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        ).set_display_name("evaluate + gate")
        use_mlflow_credentials(evaluate, target)  # it compares with the registry's champion
        # The gate is evaluate's single return value: kfp.local (2.17) resolves a condition on a task's
        # "Output" but treats a named NamedTuple output as a missing parent input and skips the branch.
        with dsl.If(evaluate.outputs["Output"] == True, name="gate-approved"):  # noqa: E712
            register = register_op(
                **component_arguments(REGISTER, p),
                model=evaluate.outputs["operating_model"],
                evaluation_metrics=evaluate.outputs["metrics"],
                decision=evaluate.outputs["decision"],
                audit_record=evaluate.outputs["audit_record"],
                model_card=evaluate.outputs["model_card"],
                report=evaluate.outputs["report"],
                statistics=validate.outputs["statistics"],
                schema=validate.outputs["schema"],
                data_fingerprint=validate.outputs["data_fingerprint"],
                pipeline_job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                pipeline_job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            ).set_display_name("register (MLflow)")
            use_mlflow_credentials(register, target)
            deploy = deploy_op(
                **component_arguments(DEPLOY, p),
                version=register.outputs["version"],
                runtime_image=images.predictor,
            ).set_display_name("deploy (KServe)")
            use_mlflow_credentials(deploy, target)
        # Caching, task by task (KFP reuses a cached task's outputs when its inputs are the same):
        # validate and train are pure functions of their inputs, so a re-run after a failure (a lost
        # training pod, a failed deploy) reuses them instead of redoing them, as long as the data
        # location's contents do not change (give new data a new path, or submit with --no-cache).
        # validate's inputs include the champion's data contract, named by the reference task, so a
        # new champion means a new validation. reference and evaluate read the registry's current
        # champion, and register and deploy move aliases and serving traffic: these must run every
        # time, never be skipped.
        for task in (validate, train):
            task.set_caching_options(True)
        for task in (reference, evaluate, register, deploy):
            task.set_caching_options(False)
        for task in (reference, validate, train, evaluate, register, deploy):
            run_as_image_user(task, target)

    training_pipeline = dsl.pipeline(name=PIPELINE_NAME, description=DESCRIPTION)(
        declare_pipeline_function("training_pipeline", SUMMARY, TRAINING_PIPELINE, train_and_ship)
    )
    return training_pipeline
