"""Training settings that adapt to the data set: validation plan and hyper-parameters from its shape.

``epochs``, ``batch_size``, ``learning_rate`` and ``hidden_units`` given as 0 / empty ("auto") are
chosen here, in the parent process, from the training rows, the input width after one-hot encoding
and the class balance; values given explicitly are kept. The rules are generic on purpose (no data
set is special-cased) and were measured on four public tabular data sets of 1k-10k rows
(``benchmarks/model_quality.py``) plus a 150k-row synthetic one; on all of them the results moved
little across the ranges these rules pick from, which is what a default should do:

- **batch**: about 50 optimisation steps per epoch (a power of two, 32..8192 rows over all workers),
  but large enough to hold ~4 rows of the rarer class on average, so a rare-positive batch is rarely
  all negatives. Each worker takes its share (DDP averages the gradients over the workers).
- **learning rate**: AdamW's 1e-3, grown with the square root of the batch above 512 rows (at most
  3e-3): larger batches average away gradient noise and tolerate a larger step.
- **epochs**: a ceiling of about 3,000 optimisation steps (10..200 epochs); early stopping on the
  validation loss normally ends training well before it.
- **hidden units**: two layers, the first about twice the input width (a power of two, 32..256,
  and no wider than rows/32 so tiny data sets get a small network), the second half as wide.

The validation plan (:func:`plan_validation`) decides how validation rows are carved out of the
training data: k-fold cross-fitting (k networks, each validated on the fold it did not train on,
averaged into one model) on small data, where one network trained on fewer rows and one small
validation split are both noisy; one stratified split on large data, where k-fold would cost k
times the compute for little gain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # training.py imports this module; the config type is only needed for hints
    from kfp_cicd.components.train.training import TrainingConfig

STEPS_PER_EPOCH = 50
MIN_BATCH, MAX_BATCH = 32, 8192
RARE_ROWS_PER_BATCH = 4
BASE_LEARNING_RATE, LEARNING_RATE_BATCH, MAX_LEARNING_RATE = 1e-3, 512, 3e-3
TARGET_STEPS = 3000
MIN_EPOCHS, MAX_EPOCHS = 10, 200
MIN_WIDTH, MAX_WIDTH, ROWS_PER_UNIT = 32, 256, 32
MIN_SECOND_WIDTH = 16
# Validation plan.
CROSS_FIT_MAX_ROWS = 20_000  # up to this many training rows: k-fold cross-fitting by default
CROSS_FIT_MIN_RARE_ROWS = 100  # ... and above it too while one split would hold fewer rare rows
AUTO_FOLDS = 5
MIN_VALIDATION_RARE_ROWS = 30  # a single split is enlarged (up to 30 % of the rows) to hold this many
MAX_VALIDATION_FRACTION = 0.3


def power_of_two(value: float) -> int:
    """The power of two nearest to ``value`` on a log scale (1 for values below 1)."""
    return 2 ** max(0, round(math.log2(max(value, 1.0))))


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


@dataclass(frozen=True)
class ValidationPlan:
    """How validation rows are carved out of the training rows.

    ``folds``: 0 = no validation rows (too few rows of the rarer class), 1 = one stratified split of
    ``fraction``, k >= 2 = k-fold cross-fitting (each network holds out one fold, ``1/k`` of the rows).
    ``rule`` says why, for the logs and the model's metadata.
    """

    folds: int
    fraction: float
    rule: str

    @property
    def cross_fitted(self) -> bool:
        return self.folds >= 2


def plan_validation(rows: int, rare_rows: int, config: TrainingConfig) -> ValidationPlan:
    """The validation plan for ``rows`` training rows of which ``rare_rows`` are of the rarer class.

    ``config.validation_folds``: 0 chooses (k-fold with :data:`AUTO_FOLDS` folds up to
    :data:`CROSS_FIT_MAX_ROWS` rows, or while one split of ``validation_fraction`` would hold fewer
    than :data:`CROSS_FIT_MIN_RARE_ROWS` rare rows; one split otherwise), 1 forces one split, k >= 2
    forces k folds. Every fold and split needs a rare row on both sides, so k shrinks to the number
    of rare rows and a class of fewer than two rows leaves no validation at all (training then runs
    its full epochs, probabilities stay uncalibrated and the threshold falls back to 0.5).
    """
    fraction = config.validation_fraction
    if rare_rows < 2:
        return ValidationPlan(
            0,
            0.0,
            f"no validation rows: the rarer class has {rare_rows} row(s), "
            "at least 2 are needed to hold one out",
        )
    folds = config.validation_folds
    reason = f"validation_folds={folds} given"
    if folds == 0:
        small = rows <= CROSS_FIT_MAX_ROWS or rare_rows * fraction < CROSS_FIT_MIN_RARE_ROWS
        folds = AUTO_FOLDS if small else 1
        reason = f"{rows:,} training rows, {rare_rows:,} of the rarer class: " + (
            "small data, cross-fitted" if small else "large data, one split"
        )
    if folds >= 2:
        folds = min(folds, rare_rows)
        return ValidationPlan(folds, 1.0 / folds, f"{folds}-fold cross-fitting ({reason})")
    wanted = max(fraction, MIN_VALIDATION_RARE_ROWS / rare_rows)
    fraction = clamp(wanted, fraction, MAX_VALIDATION_FRACTION)
    if not 1 <= round(fraction * rare_rows) <= rare_rows - 1:
        fraction = clamp(1.5 / rare_rows, fraction, MAX_VALIDATION_FRACTION)
    return ValidationPlan(1, fraction, f"one stratified split holding out {fraction:.0%} ({reason})")


def resolve_hyperparameters(
    rows: int, input_dim: int, positives: int, config: TrainingConfig, world_size: int = 1
) -> TrainingConfig:
    """``config`` with its automatic (0 / empty) epochs, batch size, learning rate and widths chosen.

    ``rows`` and ``positives`` count the rows one network trains on, ``input_dim`` is the width after
    preprocessing and ``world_size`` the number of training processes (``batch_size`` is per
    process). Explicit values are returned unchanged. See the module docstring for the rules.
    """
    rows = max(int(rows), 1)
    rare_share = min(positives, rows - positives) / rows
    wanted = power_of_two(rows / STEPS_PER_EPOCH)
    if rare_share > 0:
        wanted = max(wanted, power_of_two(RARE_ROWS_PER_BATCH / rare_share))
    global_batch = int(clamp(wanted, MIN_BATCH, MAX_BATCH))
    batch_size = config.batch_size or max(1, global_batch // max(world_size, 1))
    global_batch = batch_size * max(world_size, 1)
    learning_rate = config.learning_rate or min(
        MAX_LEARNING_RATE, BASE_LEARNING_RATE * math.sqrt(max(1.0, global_batch / LEARNING_RATE_BATCH))
    )
    steps_per_epoch = math.ceil(rows / global_batch)
    epochs = config.epochs or int(clamp(math.ceil(TARGET_STEPS / steps_per_epoch), MIN_EPOCHS, MAX_EPOCHS))
    hidden_units = config.hidden_units
    if not hidden_units:
        width = int(clamp(power_of_two(2 * input_dim), MIN_WIDTH, MAX_WIDTH))
        width = min(width, max(MIN_WIDTH, power_of_two(rows / ROWS_PER_UNIT)))
        hidden_units = (width, max(MIN_SECOND_WIDTH, width // 2))
    return replace(
        config,
        epochs=int(epochs),
        batch_size=int(batch_size),
        learning_rate=float(round(learning_rate, 6)),
        hidden_units=tuple(hidden_units),
    )


def describe(config: TrainingConfig) -> dict[str, object]:
    """The resolved settings as plain values (metrics, history and model metadata)."""
    return {
        "max_epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "hidden_units": ",".join(str(u) for u in config.hidden_units),
        "dropout": config.dropout,
        "weight_decay": config.weight_decay,
        "early_stopping_patience": config.early_stopping_patience,
    }
