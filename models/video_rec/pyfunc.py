"""The video recommender as an MLflow pyfunc: the two-tower model, the ANN index, the ranker and the serving
state they were built with, in one versioned folder. Logged from code (pyfunc_model.py), so nothing is pickled."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from models.video_rec.recommender import Recommender


class VideoRecommenderModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.recommender = Recommender.load(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """user_id rows in; user_id, rank, video_id, score, strategy out (k from params, default 10)."""
        k = int((params or {}).get("k", 10))
        return self.recommender.recommend(model_input["user_id"].astype(str).tolist(), k).to_pandas()


def log_recommender(recommender: Recommender, bundle: Path, example_users: list[str]):
    """Logs the bundle as a pyfunc model in the active MLflow run; returns the ModelInfo."""
    from models.packaging import log_from_code

    sample = pd.DataFrame({"user_id": example_users[:3]})
    output = recommender.recommend(example_users[:3], 10).to_pandas()
    return log_from_code("video_rec", {"bundle": str(bundle)}, sample, output,
                         ("mlflow", "torch", "faiss-cpu", "xgboost-cpu", "polars", "pandas", "numpy"), params={"k": 10},
                         input_example=False)
