"""KFP wrapper of the training step (logic: ``kfp_cicd.components.train.training``)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Model, Output
from kfp.dsl.python_component import PythonComponent


def train_model(
    train_data: str,
    schema: Input[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
    epochs: int = 8,
    batch_size: int = 512,
    learning_rate: float = 0.002,
    num_processes: int = 2,
    decision_threshold: float = 0.5,
    seed: int = 0,
    max_restarts: int = 1,
    checkpoint_dir: str = "",
    entry_point: str = "",
    entry_point_params: str = "{}",
):
    """Train a tabular fraud classifier with PyTorch DistributedDataParallel under torchrun.

    The same task runs one node (torchrun --standalone) or, as a Vertex custom job with several
    replicas, one node per replica (rank and master from CLUSTER_SPEC). Per-epoch checkpoints
    (model, optimiser, sampler epoch, RNG) let restarted workers resume. Fits scikit-learn
    preprocessing (impute, scale, one-hot) following the validated schema, trains
    an MLP with one torchrun worker per GPU (NCCL, bf16 where supported) or ``num_processes`` CPU
    workers (gloo), weighting the rare positive class, and saves preprocessing and network together
    as one MLflow pyfunc model.

    Args:
        train_data: Training data file (CSV or Parquet; local path, gs:// or s3://).
        schema: Schema directory from validate_data; its features.json says which columns are
            numeric and which categorical, and names the label.
        model: Output. The MLflow pyfunc model directory (preprocessing + network).
        metrics: Output. Training loss, training ROC AUC / PR AUC, rows, world size, epochs.
        epochs: Passes over the training data.
        batch_size: Rows per optimisation step on each worker.
        learning_rate: AdamW learning rate.
        num_processes: CPU workers when no GPU is visible (one per GPU otherwise).
        decision_threshold: Probability above which the packaged model predicts fraud.
        seed: Seed for shuffling and initialisation.
        max_restarts: torchrun restarts of the worker group after a lost worker; the restarted
            workers resume from the latest checkpoint.
        checkpoint_dir: Where per-epoch checkpoints go (empty: the task's temporary work directory;
            give persistent storage, e.g. a /gcs/ path on Vertex, to survive a lost pod or replica).
        entry_point: Training module in the image following the bring-your-own-code contract
            (empty: the built-in tabular MLP).
        entry_point_params: JSON object of extra parameters passed to the training module.
    """
    from kfp_cicd.components.train.training import TrainingConfig, run_training_task

    config = TrainingConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                            num_processes=num_processes, decision_threshold=decision_threshold,
                            seed=seed, max_restarts=max_restarts, checkpoint_dir=checkpoint_dir,
                            entry_point=entry_point, entry_point_params=entry_point_params)
    results = run_training_task(train_data=train_data, schema_dir=schema.path, model_dir=model.path,
                                config=config, log_metric=metrics.log_metric,
                                metrics_path=metrics.path)
    if results is None:  # a worker replica of a multi-replica Vertex job: only the chief has outputs
        from kfp_cicd.components.train.vertex import leave_as_worker_replica

        leave_as_worker_replica()
    model.metadata["framework"] = "mlflow.pyfunc"


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(train_model, base_image=image, install_kfp_package=False)
