"""FROZEN COPY (test data): ``kfp_cicd/model/pyfunc_model.py`` as models saved before column scoring hold it.

Registered versions saved before ``score_columns`` existed carry this code; the predictor must still
serve them (a rollback to ``previous``). Never update this file: it stands for old artifacts.

The MLflow pyfunc model served everywhere (MLflow "models from code").

MLflow copies this file into every saved model, so a model directory is self-contained: loading it
needs mlflow, pandas, numpy, scikit-learn, skops and torch, but not kfp-cicd. Keep its imports to
those packages.

Artifacts (see ``kfp_cicd.model.packaging``):
- ``preprocessor``: the fitted scikit-learn ``ColumnTransformer``, saved with skops (no pickle).
- ``network``: the network exported with ``torch.export`` (no Python class needed to load it).
- ``config``: JSON with the feature columns, the label and the decision threshold.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import skops.io
import torch
from mlflow.pyfunc import PythonModel
from mlflow.pyfunc.model import PythonModelContext

PROBABILITY = "probability"
# Types skops does not trust by default but a fitted ColumnTransformer of ours legitimately holds.
# Anything else in the preprocessor file means it is not what training wrote: refuse it.
ALLOWED_SKOPS_TYPES = frozenset({"numpy.dtype"})
PREDICTION = "prediction"


class TabularClassifier(PythonModel):
    """Preprocessing and network in one model: DataFrame in, fraud probability and label out."""

    def load_context(self, context: PythonModelContext) -> None:
        with open(context.artifacts["config"], encoding="utf-8") as handle:
            self.config = json.load(handle)
        path = context.artifacts["preprocessor"]
        untrusted = skops.io.get_untrusted_types(file=path)
        unexpected = sorted(set(untrusted) - ALLOWED_SKOPS_TYPES)
        if unexpected:
            raise ValueError(f"preprocessor artifact holds unexpected types {unexpected}; refusing to load")
        self.preprocessor = skops.io.load(path, trusted=untrusted)
        self.network = torch.export.load(context.artifacts["network"]).module()
        self.columns = list(self.config["numeric"]) + list(self.config["categorical"])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"input is missing feature columns {missing}")
        frame = frame.loc[:, self.columns].copy()
        for column in self.config["categorical"]:
            frame[column] = frame[column].astype(str)
        matrix = np.asarray(self.preprocessor.transform(frame), dtype=np.float32)
        with torch.no_grad():
            logits = self.network(torch.from_numpy(matrix))
        probability = torch.sigmoid(logits).numpy().astype(np.float64)
        threshold = float(self.config["decision_threshold"])
        return pd.DataFrame(
            {PROBABILITY: probability, PREDICTION: (probability >= threshold).astype(np.int64)}
        )


mlflow.models.set_model(TabularClassifier())
