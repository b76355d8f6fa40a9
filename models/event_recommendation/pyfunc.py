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
    from mlflow.models import infer_signature

    from models.packaging import MODELS_PACKAGE, pinned_requirements

    save_ranker(ranker, folder)
    loaded = EventRankerModel()
    loaded.ranker = ranker
    sample = sample.reindex(columns=list(FEATURES)).astype("float64")
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(MODELS_PACKAGE / "event_recommendation" / "pyfunc_model.py"),  # models from code
        artifacts={"ranker": str(folder)},
        signature=infer_signature(sample, loaded.predict(None, sample)),
        input_example=sample.head(3),
        code_paths=[str(MODELS_PACKAGE)],
        pip_requirements=pinned_requirements("mlflow", "xgboost-cpu", "torch", "scikit-learn", "polars", "pandas", "numpy"),
    )
