"""Similar listings' part of the continual-learning kit (assets/continual.py): the champion's skip-gram trained a
few more epochs on the sessions of the days since it last learned (new listings join its vocabulary), re-indexed,
and judged on the newest day by the booked listing's rank per session."""

from datetime import timedelta

import polars as pl

from assets.continual import FineTuning, Tuned
from assets.release import Scores
from assets.similar_listings.raw import GROUP
from assets.similar_listings.training import EXPERIMENT, REGISTERED_MODEL

FINE_TUNE_EPOCHS = 2


def _known(context, rows: pl.DataFrame) -> pl.DataFrame:
    return rows  # a session's events are its labels: known as soon as they land


def _end_of(rows: pl.DataFrame):
    day = rows["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


def _tune(context, champion_uri: str, fresh: pl.DataFrame, holdout: pl.DataFrame, listings: pl.DataFrame) -> Tuned:
    import tempfile
    from pathlib import Path

    import mlflow

    from models.similar_listings.data import sentences
    from models.similar_listings.pyfunc import log_similar_listings
    from models.similar_listings.service_model import SimilarListings
    from models.similar_listings.skipgram import train

    champion = context.resources.mlflow_tracking.load_pyfunc(champion_uri).unwrap_python_model().model
    tuned = train(sentences(fresh), listings, champion.trained.config, epochs=FINE_TUNE_EPOCHS, start=champion.trained,
                  progress=context.log.info)
    for epoch, loss in enumerate(tuned.losses, 1):
        mlflow.log_metric("train_loss", loss, step=epoch)
    mlflow.log_params({"epochs": FINE_TUNE_EPOCHS, "listings_before": len(champion.trained.ids),
                       "listings_after": len(tuned.ids)})
    model = SimilarListings.build(listings, tuned, _end_of(holdout))
    metrics, _ = _holdout_report(tuned, holdout, listings)
    mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items() if v is not None})
    with tempfile.TemporaryDirectory() as tmp:
        info = log_similar_listings(model, Path(tmp) / "bundle")
    return Tuned(info.model_uri, {"seconds": round(tuned.seconds, 2), "listings_learned": len(tuned.ids),
                                  "new_listings_learned": len(set(tuned.ids) - set(champion.trained.ids)),
                                  **{f"holdout_{k}": v for k, v in metrics.items() if v is not None}})


def _holdout_report(trained, holdout: pl.DataFrame, listings: pl.DataFrame):
    import numpy as np

    from models.similar_listings.data import Catalogue, evaluation_cases
    from models.similar_listings.evaluation import booked_ranks, embeddings_of

    catalogue = Catalogue.from_listings(listings, _end_of(holdout))
    cases = evaluation_cases(holdout, catalogue, max_next_clicks=0)
    if not cases.booked:
        raise ValueError(f"the holdout day {holdout['ts'].max():%Y-%m-%d} holds no session that booked a listing other "
                         "than its first click: nothing to judge the fine-tune on")
    ranks = booked_ranks(embeddings_of(trained, catalogue), cases)
    metrics = {"mean_booked_rank": float(ranks.mean()), "median_booked_rank": float(np.median(ranks))}
    return metrics, (ranks, [session for session, *_ in cases.booked])


def _score(context, version: str, holdout: pl.DataFrame, last_learned: pl.DataFrame, listings: pl.DataFrame) -> Scores:
    from assets.similar_listings.training import load_model

    metrics, (ranks, sessions) = _holdout_report(load_model(context.resources.mlflow_tracking, version).trained,
                                                 holdout, listings)
    return Scores(metrics, ranks, sessions)


def fine_tuning(retrain_job: str) -> FineTuning:
    from assets.similar_listings.serving import PROMOTION_POLICY

    return FineTuning(
        case=GROUP, registered_model=REGISTERED_MODEL, rows_asset="similar_listings_sessions",
        tunable_kinds=("skipgram",), experiment=EXPERIMENT, retrain_job=retrain_job, known=_known, tune=_tune,
        score=_score, policy=PROMOTION_POLICY, unit="session", inputs={"listings": "similar_listings_listings"},
    )
