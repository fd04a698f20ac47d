"""Which columns are features, and how each is treated (numeric vs categorical).

The validation component writes this as ``features.json`` next to the TFDV schema; training reads it
so feature handling follows the schema rather than the synthetic data set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kfp_cicd.errors import DataError
from kfp_cicd.model.labels import BinaryLabels

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class FeatureSpec:
    """The label column and the feature columns split by how they are preprocessed."""

    label: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    label_classes: BinaryLabels | None = None

    @property
    def labels(self) -> BinaryLabels:
        """The label's two classes and the positive one (0/1 for specs written without them)."""
        return self.label_classes or BinaryLabels.from_dict({}, self.label)

    @property
    def columns(self) -> tuple[str, ...]:
        """All feature columns, numeric first (the model's input order)."""
        return self.numeric + self.categorical

    @classmethod
    def from_dict(cls, payload: dict) -> FeatureSpec:
        """Parse the ``features.json`` layout: ``{"label", "classes", "features": [{"name", "kind"}]}``."""
        try:
            label = payload["label"]
            features = payload["features"]
            numeric = tuple(f["name"] for f in features if f["kind"] == NUMERIC)
            categorical = tuple(f["name"] for f in features if f["kind"] == CATEGORICAL)
        except (KeyError, TypeError) as exc:
            raise DataError(f"feature spec is malformed: missing {exc}") from exc
        unknown = [f["name"] for f in features if f["kind"] not in (NUMERIC, CATEGORICAL)]
        if unknown:
            raise DataError(f"feature spec has features of unknown kind: {unknown}")
        if not numeric and not categorical:
            raise DataError("feature spec lists no features besides the label")
        classes = payload.get("classes")
        label_classes = BinaryLabels.from_dict(classes, label) if isinstance(classes, dict) else None
        return cls(label=label, numeric=numeric, categorical=categorical, label_classes=label_classes)

    def to_dict(self) -> dict:
        """The ``features.json`` layout."""
        return {
            "label": self.label,
            "classes": self.labels.to_dict(),
            "features": [{"name": n, "kind": NUMERIC} for n in self.numeric]
            + [{"name": n, "kind": CATEGORICAL} for n in self.categorical],
        }

    @classmethod
    def load(cls, path: str | Path) -> FeatureSpec:
        """Read a ``features.json`` file (or the ``features.json`` inside a schema directory)."""
        path = Path(path)
        if path.is_dir():
            path = path / "features.json"
        if not path.is_file():
            raise DataError(f"feature spec not found at {path}; run validate_data first")
        return cls.from_dict(json.loads(path.read_text()))
