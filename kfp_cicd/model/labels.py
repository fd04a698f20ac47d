"""Binary labels in the forms real data sets use: 0/1, booleans, or any two distinct values.

The label column is reduced to its two classes, each written as text (``"1"``, ``"true"``,
``"Yes"``, ``">50K"``); one of them is the positive class the model scores. ``positive_label``
names it; without it the rule is, in order:

- ``0``/``1`` (or any two numbers): the larger number;
- booleans: ``true``;
- a yes/no style pair (yes/no, y/n, true/false, t/f, positive/negative, pos/neg, any case): the
  affirmative one;
- any other two values: the less frequent class (the class a detector looks for), ties going to
  the value that sorts last.

The rule that chose it is kept (``rule``) and travels into the model's config, its model card and
the run summary, so nobody has to guess which class a probability refers to.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from kfp_cicd.errors import DataError

AFFIRMATIVE = frozenset({"1", "yes", "y", "true", "t", "positive", "pos"})
NEGATIVE = frozenset({"0", "no", "n", "false", "f", "negative", "neg"})
SHOWN_VALUES = 5


def label_text(value: Any) -> str:
    """One label value as text: booleans as ``true``/``false``, whole numbers without ``.0``."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value).strip()


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


@dataclass(frozen=True)
class BinaryLabels:
    """The label column's two classes as text, which one is positive, and why."""

    column: str
    positive: str
    negative: str
    rule: str

    @property
    def class_names(self) -> list[str]:
        """``[negative, positive]``: the order of a confusion matrix's rows (0, then 1)."""
        return [self.negative, self.positive]

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any], column: str) -> BinaryLabels:
        """Read back :meth:`to_dict`; files written before labels were recorded mean 0/1."""
        return cls(
            column=column,
            positive=str(payload.get("positive", "1")),
            negative=str(payload.get("negative", "0")),
            rule=str(payload.get("rule", "0/1 label: 1 is positive")),
        )

    @classmethod
    def infer(cls, values: pd.Series | Iterable[Any], column: str, positive_label: str = "") -> BinaryLabels:
        """The classes of ``values`` (a label column) and the positive one; refuses anything but two.

        Raises:
            DataError: missing labels, fewer or more than two distinct values, or a
                ``positive_label`` that is neither of them.
        """
        series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        missing = int(series.isna().sum())
        if missing:
            raise DataError(
                f"label column '{column}' has {missing} missing value(s); every training row "
                "needs a label: drop or fill those rows"
            )
        counts = series.map(label_text).value_counts()
        if len(counts) != 2:
            shown = sorted(counts.index.tolist(), key=str)[:SHOWN_VALUES]
            what = "a single value" if len(counts) == 1 else f"{len(counts)} distinct values"
            raise DataError(
                f"label column '{column}' must hold exactly two classes (binary "
                f"classification), found {what}: {shown}"
                f"{' …' if len(counts) > SHOWN_VALUES else ''}. Pick the right label_column, "
                "or map the values to two classes first"
            )
        first, second = sorted(counts.index.tolist())
        if positive_label.strip():
            positive = _match(positive_label.strip(), (first, second), column)
            return cls(
                column,
                positive,
                second if positive == first else first,
                f"positive_label={positive_label.strip()!r}",
            )
        positive, rule = _default_positive(counts)
        return cls(column, positive, second if positive == first else first, rule)

    def encode(self, values: pd.Series) -> np.ndarray:
        """The label column as float32 1.0 (positive) / 0.0 (negative); any other value is an error."""
        if values.isna().any():
            raise DataError(f"label column '{self.column}' has {int(values.isna().sum())} missing value(s)")
        text = values.map(label_text)
        unknown = sorted(set(text.unique()) - {self.positive, self.negative})
        if unknown:
            raise DataError(
                f"label column '{self.column}' holds {unknown[:SHOWN_VALUES]}, which are neither "
                f"of the model's classes {self.class_names} (positive: {self.positive!r})"
            )
        return (text == self.positive).to_numpy(dtype=np.float32)

    def encode_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """:meth:`encode` on ``frame``'s label column, naming the columns when it is absent."""
        if self.column not in frame.columns:
            raise DataError(f"label column '{self.column}' is missing; columns are {list(frame.columns)}")
        return self.encode(frame[self.column])


def _match(wanted: str, classes: tuple[str, str], column: str) -> str:
    """The class ``wanted`` names: exactly, else the one it names ignoring case, else numerically."""
    if wanted in classes:
        return wanted
    folded = [c for c in classes if c.casefold() == wanted.casefold()]
    if len(folded) == 1:
        return folded[0]
    if _is_number(wanted):
        numeric = [c for c in classes if _is_number(c) and float(c) == float(wanted)]
        if len(numeric) == 1:
            return numeric[0]
    raise DataError(
        f"positive_label {wanted!r} is not a value of label column '{column}'; its two "
        f"classes are {list(classes)}"
    )


def _default_positive(counts: pd.Series) -> tuple[str, str]:
    """The positive class when none is named, and the rule that chose it (see the module docstring)."""
    first, second = sorted(counts.index.tolist())
    if _is_number(first) and _is_number(second):
        positive = first if float(first) > float(second) else second
        return positive, f"numeric label: the larger value {positive!r} is positive"
    folded = {first.casefold(), second.casefold()}
    for value in (first, second):
        other = second if value == first else first
        if value.casefold() in AFFIRMATIVE and other.casefold() in NEGATIVE and len(folded) == 2:
            return value, f"{value!r} reads as yes, {other!r} as no"
    rarest = max(counts.index.tolist(), key=lambda v: (-counts[v], v))
    share = 100.0 * counts[rarest] / counts.sum()
    return rarest, (
        f"{rarest!r} is the less frequent class ({share:.1f} % of rows); set positive_label "
        "to choose the other"
    )
