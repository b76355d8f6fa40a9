"""The engagement model as an MLflow pyfunc: FEATURES rows in, each head's probability, the expected capped dwell and
the weighted score (the default weights) out. The model is saved as plain bytes (see ranker.py) and the class is
logged from code (pyfunc_model.py), so nothing is pickled."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.news_feed.evaluation import DEFAULT_WEIGHTS, weighted_score
from models.news_feed.features import FEATURES
from models.news_feed.ranker import OUTPUTS, EngagementModel


def save_model(model: EngagementModel, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.bin").write_bytes(model.to_bytes())
    (folder / "model.json").write_text(json.dumps({"kind": model.kind, "features": list(FEATURES), "outputs": list(OUTPUTS)}))
    return folder


def load_model(folder: Path) -> EngagementModel:
    meta = json.loads((folder / "model.json").read_text())
    if meta["features"] != list(FEATURES) or meta["outputs"] != list(OUTPUTS):
        raise ValueError(f"the model in {folder} was trained on other features or heads; retrain it")
    return EngagementModel.from_bytes(meta["kind"], (folder / "model.bin").read_bytes())


class NewsFeedModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.model = load_model(Path(context.artifacts["model"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """One row per (user, post) with the FEATURES columns (NaN where unknown) in; p_<head>, dwell and score out."""
        matrix = model_input.reindex(columns=list(FEATURES)).to_numpy(dtype=np.float32, na_value=np.nan)
        predicted = self.model.predict(matrix)
        return pd.DataFrame({**{(h if h == "dwell" else f"p_{h}"): predicted[h] for h in OUTPUTS},
                             "score": weighted_score(predicted, DEFAULT_WEIGHTS)})


def log_news_feed_model(model: EngagementModel, sample: pd.DataFrame, folder: Path):
    """Logs the model as a pyfunc model in the active MLflow run; returns the ModelInfo."""
    from models.packaging import log_from_code

    save_model(model, folder)
    loaded = NewsFeedModel()
    loaded.model = model
    sample = sample.reindex(columns=list(FEATURES)).astype("float64")
    return log_from_code("news_feed", {"model": str(folder)}, sample, loaded.predict(None, sample),
                         ("mlflow", "xgboost-cpu", "torch", "polars", "pandas", "numpy", "scikit-learn"))
