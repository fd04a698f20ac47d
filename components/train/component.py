"""KFP wrapper of the training step (logic: ``kfp_cicd.components.train.training``)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Model, Output
from kfp.dsl.python_component import PythonComponent


def train_model(
    train_data: str,
    schema: Input[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
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
    checkpoint_dir: str = "",
    entry_point: str = "",
    entry_point_params: str = "{}",
):
    """Train a tabular binary classifier with PyTorch DistributedDataParallel under torchrun.

    The same task runs one node (torchrun --standalone) or, as a Vertex custom job with several
    replicas, one node per replica (rank and master from CLUSTER_SPEC). Per-epoch checkpoints
    (model, optimiser, sampler epoch, RNG, early-stopping state) let restarted workers resume. Fits
    scikit-learn preprocessing (impute, scale, one-hot) following the validated schema, holds
    validation rows out of the training data (stratified; on small data sets k-fold cross-fitting,
    an ensemble of k networks each validated on the fold it did not see), trains an MLP with one
    torchrun worker per GPU (NCCL, bf16 where supported) or ``num_processes`` CPU workers (gloo)
    with early stopping on the validation loss, calibrates its probabilities on the validation rows
    (Platt scaling) and saves preprocessing, network and calibration as one MLflow pyfunc model.
    Settings left at 0 / "" are chosen from the data set's rows, width and class balance.

    Args:
        train_data: Training data file (CSV or Parquet; local path, gs:// or s3://).
        schema: Schema directory from validate_data; its features.json says which columns are
            numeric and which categorical, and names the label.
        model: Output. The MLflow pyfunc model directory (preprocessing + network).
        metrics: Output. Training loss, training ROC AUC / PR AUC, rows, world size, epochs, the
            validation rows' calibrated log loss and ROC AUC, best epoch, the chosen threshold and
            the hyper-parameters used.
        epochs: Most passes over the training data; early stopping may end sooner (0: chosen from
            the data set's size).
        batch_size: Rows per optimisation step on each worker (0: chosen from the data set's size).
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
        num_processes: CPU workers when no GPU is visible (one per GPU otherwise).
        decision_threshold: Probability above which the packaged model predicts the positive class
            (negative: the threshold with the best F1 on the validation rows).
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

    config = TrainingConfig(
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
        checkpoint_dir=checkpoint_dir,
        entry_point=entry_point,
        entry_point_params=entry_point_params,
    )
    results = run_training_task(
        train_data=train_data,
        schema_dir=schema.path,
        model_dir=model.path,
        config=config,
        log_metric=metrics.log_metric,
        metrics_path=metrics.path,
    )
    if results is None:  # a worker replica of a multi-replica Vertex job: only the chief has outputs
        from kfp_cicd.components.train.replicas import leave_as_worker_replica

        leave_as_worker_replica()
    model.metadata["framework"] = "mlflow.pyfunc"


def build_component(image: str) -> PythonComponent:
    """The component on ``image`` (image references are chosen at compile time)."""
    return dsl.component(train_model, base_image=image, install_kfp_package=False)
