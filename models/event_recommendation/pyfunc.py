"""The event ranker as an MLflow pyfunc: FEATURES rows in, P(register) out. The ranker is saved as plain bytes (see
ranker.py) and the class is logged from code (pyfunc_model.py), so nothing is pickled."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.event_recommendation.features import FEATURES
from models.event_recommendation.ranker import Ranker


def save_ranker(ranker: Ranker, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ranker.bin").write_bytes(ranker.to_bytes())
    (folder / "ranker.json").write_text(json.dumps({"kind": ranker.kind, "features": list(FEATURES)}))
    return folder


def load_ranker(folder: Path) -> Ranker:
    meta = json.loads((folder / "ranker.json").read_text())
    if meta["features"] != list(FEATURES):
        raise ValueError(f"the ranker in {folder} was trained on other features ({meta['features']}); retrain it")
    return Ranker.from_bytes(meta["kind"], (folder / "ranker.bin").read_bytes())


class EventRankerModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.ranker = load_ranker(Path(context.artifacts["ranker"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """One row per (user, event) with the FEATURES columns (NaN where unknown) in; p_register out."""
        matrix = model_input.reindex(columns=list(FEATURES)).to_numpy(dtype=np.float32, na_value=np.nan)
        return pd.DataFrame({"p_register": self.ranker.predict(matrix)})


def log_event_ranker(ranker: Ranker, sample: pd.DataFrame, folder: Path):
    """Logs the ranker as a pyfunc model in the active MLflow run; returns the ModelInfo."""
    from models.packaging import log_from_code

    save_ranker(ranker, folder)
    loaded = EventRankerModel()
    loaded.ranker = ranker
    sample = sample.reindex(columns=list(FEATURES)).astype("float64")
    return log_from_code("event_recommendation", {"ranker": str(folder)}, sample, loaded.predict(None, sample),
                         ("mlflow", "xgboost-cpu", "torch", "scikit-learn", "polars", "pandas", "numpy"))
