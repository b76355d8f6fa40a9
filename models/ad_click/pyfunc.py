"""The ad click model as an MLflow pyfunc: either the XGBoost booster or a DeepFM/DCN network, each with the
category vocabularies it was trained with, behind one interface the gate, the batch job and the service call.

Logged from code (pyfunc_model.py, MLflow's models-from-code): the model loads this class from the code shipped
with it (code_paths) rather than unpickling a frozen copy of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import polars as pl

from models.ad_click.features import FEATURE_COLUMNS, ID_COLUMNS



class AdClickModel(mlflow.pyfunc.PythonModel):
    """`kind` is xgboost, deepfm or dcn. The networks read the id columns when the input has them (a row without
    them scores as an unknown user and ad); the booster ignores them."""

    def load_context(self, context):
        from models.ad_click.train import CategoryEncoder

        if "network" in context.artifacts:
            from models.ad_click.deep import DeepClickModel

            self.network = DeepClickModel.load(Path(context.artifacts["network"]))
            self.kind = self.network.params.kind
            self.encoder = CategoryEncoder(self.network.encoder.vocabularies)
            return
        import xgboost as xgb

        self.kind, self.network = "xgboost", None
        self.booster = xgb.Booster()
        self.booster.load_model(context.artifacts["booster"])
        state = json.loads(Path(context.artifacts["encoder"]).read_text())
        self.encoder = CategoryEncoder(state["vocabularies"])
        self.best_iteration = state["best_iteration"]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        columns = [c for c in (*FEATURE_COLUMNS, *ID_COLUMNS) if c in model_input.columns]
        return self.predict_frame(pl.from_pandas(model_input[columns]))

    def predict_frame(self, frame: pl.DataFrame) -> np.ndarray:
        """The batch path: a polars frame of FEATURE_COLUMNS (and the ids, for a network), no signature check."""
        matrix = self.encoder.transform(frame)
        if self.network is not None:
            ids = {c: frame[c].cast(pl.String).to_list() if c in frame.columns else [None] * frame.height
                   for c in ID_COLUMNS}
            return self.predict_matrix(matrix, ids)
        return self.predict_matrix(matrix)

    def predict_matrix(self, matrix: np.ndarray, ids: dict[str, Sequence[str | None]] | None = None) -> np.ndarray:
        """The online path: an already encoded design matrix (models.ad_click.serving.RequestFeatures'), and for a
        network each row's user_id, ad_id and advertiser_id."""
        if self.network is not None:
            n = matrix.shape[0]
            ids = ids or {}
            codes = self.network.encoder.id_codes_of({c: ids.get(c) or [None] * n for c in ID_COLUMNS})
            return self.network.predict(matrix, codes)
        from models.ad_click.train import predict_in_place

        return predict_in_place(self.booster, matrix, self.best_iteration)

    def serve_on_one_thread(self) -> None:
        """One worker per core: a second thread would only contend."""
        if self.network is not None:
            import torch

            torch.set_num_threads(1)
        else:
            self.booster.set_param({"nthread": 1})
