"""The news feed's part of the continual-learning kit (assets/continual.py): the champion trained further on the
impressions of the days since it last learned (the multi-task network by more epochs at a lower rate, XGBoost by
more trees per head), and judged on the newest day by each session's feed nDCG@10."""

import polars as pl

from assets.continual import FineTuning, Tuned, known_by_the_newest_day
from assets.news_feed.raw import GROUP
from assets.news_feed.training import EXPERIMENT, REGISTERED_MODEL, feed_of, load_version
from assets.release import Scores


def _known(context, rows: pl.DataFrame) -> pl.DataFrame:
    return known_by_the_newest_day(rows, context.resources.news_feed_time_split.label_delay)


def _holdout_feeds(context, model, holdout: pl.DataFrame):
    feeds = feed_of(model, holdout, context.resources.news_feed_objective.resolved)
    if not feeds.sessions:
        raise ValueError(f"the holdout day {holdout['ts'].max():%Y-%m-%d} holds no engaged session: nothing to judge on")
    return feeds


def _tune(context, champion_uri: str, fresh: pl.DataFrame, holdout: pl.DataFrame) -> Tuned:
    import tempfile
    import time
    from pathlib import Path

    import mlflow

    from models.news_feed.features import FEATURES, feature_matrix
    from models.news_feed.pyfunc import log_news_feed_model
    from models.news_feed.ranker import labels_of

    model = context.resources.mlflow_tracking.load_pyfunc(champion_uri).unwrap_python_model().model
    started = time.perf_counter()
    model.fine_tune(feature_matrix(fresh), labels_of(fresh))
    seconds = time.perf_counter() - started
    feeds = _holdout_feeds(context, model, holdout)
    mlflow.log_metrics({"fine_tune_seconds": seconds, **{f"holdout_{k}": v for k, v in feeds.report.items()}})
    with tempfile.TemporaryDirectory() as tmp:
        info = log_news_feed_model(model, holdout.head(50).select(FEATURES).to_pandas(), Path(tmp) / "model")
    context.log.info(f"fine-tuned {model.kind} on {fresh.height} impressions in {seconds:.1f}s; "
                     f"holdout feed nDCG@10 {feeds.report['ndcg_at_10']:.4f}")
    return Tuned(info.model_uri, {"seconds": round(seconds, 2), "holdout_ndcg_at_10": feeds.report["ndcg_at_10"],
                                  "holdout_sessions": len(feeds.sessions)})


def _score(context, version: str, holdout: pl.DataFrame, last_learned: pl.DataFrame) -> Scores:
    from assets.news_feed.serving import PROMOTED_METRICS

    feeds = _holdout_feeds(context, load_version(context.resources.mlflow_tracking, version), holdout)
    return Scores({k: feeds.report[k] for k in PROMOTED_METRICS}, feeds.ndcg, feeds.sessions)


def fine_tuning(retrain_job: str) -> FineTuning:
    from assets.news_feed.serving import PROMOTION_POLICY

    return FineTuning(
        case=GROUP, registered_model=REGISTERED_MODEL, rows_asset="news_feed_features",
        tunable_kinds=("multitask", "xgboost"), experiment=EXPERIMENT, retrain_job=retrain_job, known=_known, tune=_tune,
        score=_score, policy=PROMOTION_POLICY, unit="session",
        resources=frozenset({"news_feed_time_split", "news_feed_objective"}),
    )
