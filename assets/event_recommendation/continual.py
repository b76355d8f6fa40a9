"""Event recommendation's part of the continual-learning kit (assets/continual.py): the champion ranker trained
further on the impressions of the days since it last learned (the MLP by more epochs at a lower rate, XGBoost by
more trees), and judged on the newest day by AP@10 per user."""

import polars as pl

from assets.continual import FineTuning, Tuned, known_by_the_newest_day
from assets.event_recommendation.raw import GROUP
from assets.event_recommendation.training import EXPERIMENT, REGISTERED_MODEL, load_version
from assets.release import Scores
from models.event_recommendation.data import LABEL


def _known(context, rows: pl.DataFrame) -> pl.DataFrame:
    return known_by_the_newest_day(rows, context.resources.event_recommendation_time_split.label_delay)


def _holdout_scores(ranker, holdout: pl.DataFrame):
    from models.event_recommendation.evaluation import evaluate
    from models.event_recommendation.features import feature_matrix

    ranked = evaluate(holdout, ranker.predict(feature_matrix(holdout)), None)
    if not ranked.users:
        raise ValueError(f"the holdout day {holdout['ts'].max():%Y-%m-%d} holds no registration: nothing to judge on")
    return ranked


def _tune(context, champion_uri: str, fresh: pl.DataFrame, holdout: pl.DataFrame) -> Tuned:
    import tempfile
    import time
    from pathlib import Path

    import mlflow

    from models.event_recommendation.features import FEATURES, feature_matrix
    from models.event_recommendation.pyfunc import log_event_ranker

    ranker = context.resources.mlflow_tracking.load_pyfunc(champion_uri).unwrap_python_model().ranker
    started = time.perf_counter()
    ranker.fine_tune(feature_matrix(fresh), fresh[LABEL].to_numpy())
    seconds = time.perf_counter() - started
    ranked = _holdout_scores(ranker, holdout)
    mlflow.log_metrics({"fine_tune_seconds": seconds, **{f"holdout_{k}": v for k, v in ranked.report.items() if v is not None}})
    with tempfile.TemporaryDirectory() as tmp:
        info = log_event_ranker(ranker, holdout.head(50).select(FEATURES).to_pandas(), Path(tmp) / "ranker")
    context.log.info(f"fine-tuned {ranker.kind} on {fresh.height} impressions in {seconds:.1f}s; "
                     f"holdout mAP@10 {ranked.report['map_at_10']:.4f}")
    return Tuned(info.model_uri, {"seconds": round(seconds, 2), "holdout_map_at_10": ranked.report["map_at_10"],
                                  "holdout_users": len(ranked.users)})


def _score(context, version: str, holdout: pl.DataFrame, last_learned: pl.DataFrame) -> Scores:
    from assets.event_recommendation.serving import PROMOTED_METRICS

    ranked = _holdout_scores(load_version(context.resources.mlflow_tracking, version), holdout)
    return Scores({k: ranked.report[k] for k in PROMOTED_METRICS}, ranked.ap_at_10, ranked.users)


def fine_tuning(retrain_job: str) -> FineTuning:
    from assets.event_recommendation.serving import PROMOTION_POLICY

    return FineTuning(
        case=GROUP, registered_model=REGISTERED_MODEL, rows_asset="event_recommendation_features",
        tunable_kinds=("mlp", "xgboost"), experiment=EXPERIMENT, retrain_job=retrain_job, known=_known, tune=_tune,
        score=_score, policy=PROMOTION_POLICY, unit="user", resources=frozenset({"event_recommendation_time_split"}),
    )
