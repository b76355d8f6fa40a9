"""The ad click model as an MLflow pyfunc: the XGBoost booster plus the category vocabularies it was trained with.

Logged from code (pyfunc_model.py, MLflow's models-from-code): the model loads this class from the code shipped
with it (code_paths) rather than unpickling a frozen copy of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import polars as pl

from models.ad_click.features import FEATURE_COLUMNS


class AdClickModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import xgboost as xgb

        from models.ad_click.train import CategoryEncoder

        self.booster = xgb.Booster()
        self.booster.load_model(context.artifacts["booster"])
        state = json.loads(Path(context.artifacts["encoder"]).read_text())
        self.encoder = CategoryEncoder(state["vocabularies"])
        self.best_iteration = state["best_iteration"]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.predict_frame(pl.from_pandas(model_input[list(FEATURE_COLUMNS)]))

    def predict_frame(self, frame: pl.DataFrame) -> np.ndarray:
        """The serving fast path: a polars frame of FEATURE_COLUMNS, no pandas, no signature check."""
        import xgboost as xgb

        from models.ad_click.train import FEATURE_TYPES

        matrix = xgb.DMatrix(
            self.encoder.transform(frame),
            feature_names=list(FEATURE_COLUMNS),
            feature_types=FEATURE_TYPES,
            enable_categorical=True,
        )
        return self.booster.predict(matrix, iteration_range=(0, self.best_iteration + 1))

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """The online path: an already encoded design matrix (models.ad_click.serving.RequestFeatures')."""
        from models.ad_click.train import predict_in_place

        return predict_in_place(self.booster, matrix, self.best_iteration)
