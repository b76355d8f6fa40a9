"""The recommender as an MLflow pyfunc: the edge model, the attribute standardizer and the vocabulary in one versioned
folder. Logged from code (pyfunc_model.py), so nothing is pickled.

`predict` takes a graph (one row per connection: user_a, user_b, ts) and returns each member's top k from friends of
friends; on a graph alone, members' schools, companies, cities, requests and views are unknown, which the batch job
(assets/people_you_may_know/serving.py) reads from the raw tables instead.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import polars as pl

from models.people_you_may_know.recommend import Recommender, recommend

COLUMNS = ["user_id", "rank", "suggested_id", "score", "mutual_friends", "source"]
PACKAGES = ("mlflow", "xgboost-cpu", "torch", "torch-geometric", "scipy", "polars", "pandas", "numpy")


def graph_suggestions(recommender: Recommender, graph: pd.DataFrame, k: int) -> pd.DataFrame:
    ts_type = pl.Datetime("us", "UTC")
    frame = pl.from_pandas(graph)
    if "ts" not in frame.columns or frame["ts"].null_count() == frame.height:
        frame = frame.with_columns(ts=pl.lit(datetime(2000, 1, 1, tzinfo=timezone.utc)))
    ts = frame["ts"]
    if isinstance(ts.dtype, pl.Datetime) and ts.dtype.time_zone is None:  # MLflow's signature carries no time zone
        frame = frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    connections = frame.select(pl.col("user_a").cast(pl.String), pl.col("user_b").cast(pl.String),
                               pl.col("ts").cast(ts_type))
    if connections.is_empty():
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(COLUMNS, (str, "int64", str, float, "int64", str))})
    ids = sorted(set(connections["user_a"].to_list()) | set(connections["user_b"].to_list()))
    as_of = connections["ts"].max() + pd.Timedelta(seconds=1)
    users = pl.DataFrame({"user_id": ids, "school": None, "company": None, "industry": None, "city": None,
                          "signup_ts": None}, schema={"user_id": pl.String, "school": pl.String, "company": pl.String,
                                                      "industry": pl.String, "city": pl.String, "signup_ts": ts_type})
    empty_requests = pl.DataFrame(schema={"from_user": pl.String, "to_user": pl.String, "ts": ts_type, "accepted": pl.Boolean})
    empty_views = pl.DataFrame(schema={"viewer": pl.String, "viewed": pl.String, "ts": ts_type})
    snapshot = recommender.snapshot(users, connections, empty_requests, empty_views, as_of)
    suggestions, _ = recommend(recommender, snapshot, np.arange(snapshot.size), k)
    return suggestions.select(COLUMNS).to_pandas()


class PeopleYouMayKnowModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.recommender = Recommender.load(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Connections (user_a, user_b, ts in UTC) in; each member's k best suggestions (k from params, default 20) out."""
        return graph_suggestions(self.recommender, model_input, int((params or {}).get("k", 20)))


def log_recommender(recommender: Recommender, bundle: Path, sample: pd.DataFrame):
    """Logs the bundle as a pyfunc model in the active MLflow run; returns the ModelInfo."""
    from models.packaging import log_from_code

    recommender.save(bundle)
    loaded = PeopleYouMayKnowModel()
    loaded.recommender = recommender
    return log_from_code("people_you_may_know", {"bundle": str(bundle)}, sample, loaded.predict(None, sample, {"k": 5}),
                         PACKAGES, params={"k": 20})
