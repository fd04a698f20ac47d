"""Stratified, seeded splits of labelled rows: a holdout share, or k folds.

Both keep every class's share of the rows (a 3 % positive class stays 3 % in every part), which a
plain random split does not guarantee on small or imbalanced data, and both are deterministic for a
seed: the same rows land in the same part on every machine, so every node of a multi-node training
job carves the same validation rows without talking to the others.

Classes are visited in the order of their text (``sorted(..., key=str)``) and each class's rows are
permuted by one ``numpy.random.default_rng(seed)``, so the result does not depend on row order
within a class beyond their positions, nor on the labels' dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kfp_cicd.errors import DataError


def _classes(labels: np.ndarray) -> list[Any]:
    if len(labels) == 0:
        raise DataError("cannot split zero rows")
    if pd.isna(labels).any():
        raise DataError(f"cannot stratify: the labels have {int(pd.isna(labels).sum())} missing values")
    return sorted(pd.unique(labels).tolist(), key=str)


def stratified_holdout_mask(labels: np.ndarray | pd.Series, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of the holdout rows: ``round(fraction * class size)`` rows of each class.

    Rows are chosen with ``default_rng(seed)``; a class too small to give a row keeps all its rows on
    the training side (``round`` may give 0).
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"the holdout fraction must be between 0 and 1 (exclusive), got {fraction}")
    values = np.asarray(labels)
    rng = np.random.default_rng(seed)
    in_holdout = np.zeros(len(values), dtype=bool)
    for value in _classes(values):
        positions = np.flatnonzero(values == value)
        take = round(fraction * positions.size)
        in_holdout[rng.permutation(positions)[:take]] = True
    return in_holdout


def stratified_split(
    frame: pd.DataFrame, labels: np.ndarray | pd.Series, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` as (train, holdout) by :func:`stratified_holdout_mask`; both get a fresh index.

    Rows keep their original order within each part. Refuses a split that leaves a part empty.
    """
    values = np.asarray(labels)
    if len(values) != len(frame):
        raise DataError(f"{len(values)} labels for {len(frame)} rows; give one label per row")
    in_holdout = stratified_holdout_mask(values, fraction, seed)
    train, holdout = frame[~in_holdout], frame[in_holdout]
    if train.empty or holdout.empty:
        raise DataError(
            f"cannot split {len(frame)} rows with a holdout fraction of {fraction}: one "
            "part would be empty; use more rows"
        )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def stratified_folds(labels: np.ndarray | pd.Series, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of every row: each class's rows, permuted, dealt round-robin.

    Every fold gets ``class size // folds`` or one more row of each class; fold sizes differ by at
    most one row per class. Refuses fewer than two folds.
    """
    if folds < 2:
        raise DataError(f"k-fold needs at least 2 folds, got {folds}")
    values = np.asarray(labels)
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(values), dtype=np.int64)
    dealt = 0  # continue the deal across classes, so small classes do not all start at fold 0
    for value in _classes(values):
        positions = rng.permutation(np.flatnonzero(values == value))
        assignment[positions] = (np.arange(positions.size) + dealt) % folds
        dealt += positions.size
    return assignment
