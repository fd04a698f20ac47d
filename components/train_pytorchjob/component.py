"""KFP wrapper of the multi-node launcher (logic: ``kfp_cicd.components.train_pytorchjob.launcher``)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Model, Output
from kfp.dsl.python_component import PythonComponent


def train_model_pytorchjob(
    train_data: str,
    schema: Input[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
    worker_image: str,
    shared_pvc: str,
    shared_mount_path: str = "/mnt/shared",
    namespace: str = "kfp-cicd",
    workers: int = 1,
    gpus_per_worker: int = 1,
    gpu_resource: str = "nvidia.com/gpu",
    cpu: str = "8",
    memory: str = "32Gi",
    node_selector_json: str = "{}",
    service_account: str = "",
    job_name: str = "",
    timeout_seconds: int = 86400,
    epochs: int = 0,
    batch_size: int = 0,
    learning_rate: float = 0.0,
    hidden_units: str = "",
    early_stopping_patience: int = 5,
    validation_fraction: float = 0.15,
    validation_folds: int = 0,
    num_processes: int = 2,
    decision_threshold: float = -1.0,
    seed: int = 0,
    max_restarts: int = 1,
    entry_point: str = "",
    entry_point_params: str = "{}",
):
    """Train on several nodes as a Kubeflow PyTorchJob (Master + Workers, GPUs per worker).

    Creates a kubeflow.org/v1 PyTorchJob whose pods run the same torchrun training as train_model
    (one process per GPU, NCCL, bf16), follows its conditions and the master's log in this task's log,
    fails with the job's reason, deletes the job when this task is cancelled or times out, and copies
    the trained MLflow pyfunc model from the shared volume into the model output.

    Args:
        train_data: Training data (gs://, s3://, a file on the shared volume, or a file this task can
            read, which is copied to the shared volume).
        schema: Schema directory from validate_data (features.json names the label and feature types).
        model: Output. The MLflow pyfunc model directory (preprocessing + network).
        metrics: Output. Training loss, ROC AUC / PR AUC on the training data, rows, world size, rows/s.
        worker_image: Image of the PyTorchJob pods (the project's runtime image, GPU variant).
        shared_pvc: ReadWriteMany PersistentVolumeClaim mounted in this task and in every job pod.
        shared_mount_path: Where the claim is mounted (the same path in this task and the pods).
        namespace: Namespace of the PyTorchJob (the Training Operator must watch it).
        workers: Worker replicas besides the Master (nodes = workers + 1).
        gpus_per_worker: GPUs per pod (one torchrun process each); 0 trains on CPU.
        gpu_resource: Extended resource name of the GPUs.
        cpu: CPU request/limit per pod.
        memory: Memory request/limit per pod.
        node_selector_json: Node selector for the pods as a JSON object.
        service_account: Service account of the pods (empty: the namespace default).
        job_name: PyTorchJob name (empty: generated).
        timeout_seconds: Delete the job and fail after this long.
        epochs: Most passes over the training data; early stopping may end sooner (0: chosen from
            the data set's size).
        batch_size: Rows per optimisation step on each process (0: chosen from the data set's size).
        learning_rate: AdamW learning rate (0: chosen from the batch size).
        hidden_units: Hidden layer widths of the network, e.g. "64,32" ("": chosen from the input
            width).
        early_stopping_patience: Epochs without a better validation loss before training stops (0:
            never stop early).
        validation_fraction: Share of the training rows held out (stratified) for early stopping,
            calibration and the decision threshold when one split is used.
        validation_folds: 0: chosen from the data set's size (5-fold cross-fitting up to 20,000
            training rows, else one split); 1: one split of validation_fraction; k: k-fold
            cross-fitting (k networks averaged).
        num_processes: CPU processes per pod when gpus_per_worker is 0.
        decision_threshold: Probability above which the packaged model predicts the positive class
            (negative: the threshold with the best F1 on the validation rows).
        seed: Seed for shuffling and initialisation.
        max_restarts: torchrun restarts of a pod's workers (they resume from the latest checkpoint).
        entry_point: Training module in the image (empty: the built-in tabular MLP).
        entry_point_params: JSON object of extra parameters for the training module.
    """
    import json

    from kfp_cicd.components.train.training import TrainingConfig
    from kfp_cicd.components.train_pytorchjob.launcher import default_job_name, train_on_pytorchjob
    from kfp_cicd.components.train_pytorchjob.manifest import PyTorchJobRequest

    training = TrainingConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        hidden_units=hidden_units,
        early_stopping_patience=early_stopping_patience,
        validation_fraction=validation_fraction,
        validation_folds=validation_folds,
        num_processes=num_processes,
        decision_threshold=decision_threshold,
        seed=seed,
        max_restarts=max_restarts,
        entry_point=entry_point,
        entry_point_params=entry_point_params,
    )
    request = PyTorchJobRequest(
        name=job_name or default_job_name(),
        namespace=namespace,
        image=worker_image,
        command=(),
        shared_pvc=shared_pvc,
        shared_mount_path=shared_mount_path,
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        gpu_resource=gpu_resource,
        cpu=cpu,
        memory=memory,
        node_selector=tuple(sorted(json.loads(node_selector_json).items())),
        service_account=service_account,
    )
    results = train_on_pytorchjob(
        train_data=train_data,
        schema_dir=schema.path,
        model_dir=model.path,
        training=training,
        request=request,
        timeout_s=timeout_seconds,
    )
    for name, value in results.items():
        metrics.log_metric(name, value)
    model.metadata["framework"] = "mlflow.pyfunc"
    model.metadata["pytorchjob"] = f"{namespace}/{request.name}"


def build_component(image: str) -> PythonComponent:
    """The launcher on ``image`` (the job's pods use ``worker_image``)."""
    return dsl.component(train_model_pytorchjob, base_image=image, install_kfp_package=False)
