"""One day of news-feed monitoring (shared by the assets and the tests).

A day is described by what users were shown (the posts' age, topic and media kind), by the champion's predictions on
it (the weighted score and P(like)), by volumes (impressions, the engagement rate, the skip rate, the share of
impressions to users without history) and, once the day's labels are in, by the champion's feed nDCG@10 (the live
metric). The reference is the same description of the champion's held-out test days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from models.drift import Described, Distribution, Level, LiveMetric, Monitors
from models.news_feed.evaluation import feed_gains, feed_ndcg, weighted_score
from models.news_feed.features import feature_matrix
from models.news_feed.ranker import EngagementModel

DAY = timedelta(days=1)

MONITORS = Monitors(
    distributions=(
        Distribution("post_age_hours"),
        # The topic mix moves from day to day with what a few prolific authors post: PSI 0.15 to 0.35 between
        # ordinary days of a small world, so only a larger shift is drift.
        Distribution("topic", categorical=True, max_psi=0.5),
        Distribution("media", categorical=True),
        Distribution("score", label="prediction"),
        Distribution("p_like", label="prediction"),
    ),
    levels=(
        Level("impressions", relative=True, max_rise=0.5, max_fall=0.5),
        Level("engaged_rate", relative=True, max_rise=0.3, max_fall=0.3),
        Level("skip_rate", relative=False, max_rise=0.1, max_fall=0.1),
        Level("new_user_share", relative=False, max_rise=0.15),
    ),
    # A day holds several hundred sessions; their mean nDCG@10 moves by a hundredth or two from day to day.
    live=(LiveMetric("ndcg_at_10", higher_is_better=True, tolerance=0.08),),
)


def _describe(features: pl.DataFrame, model: EngagementModel, weights: dict[str, float], start: datetime) -> tuple[Described, int]:
    day = features.filter((pl.col("ts") >= start) & (pl.col("ts") < start + DAY))
    logged = model.predict(feature_matrix(day)) if day.height else {"like": np.zeros(0)}
    score = weighted_score(model.predict(feature_matrix(day, position=1.0)), weights) if day.height else np.zeros(0)
    feeds = feed_ndcg(day, score, feed_gains(day, weights)) if day.height else None
    sessions = feeds.report["sessions"] if feeds else 0
    media = day["media_video"].to_numpy() * 2 + day["media_image"].to_numpy() if day.height else np.zeros(0)
    described = Described(
        distributions={
            "post_age_hours": day["post_age_hours"].to_list(),
            "topic": day["topic"].fill_null("unknown").to_list(),
            "media": [("text", "image", "video")[int(m)] for m in media],
            "score": score.tolist(),
            "p_like": np.asarray(logged["like"]).tolist(),
        },
        levels={
            "impressions": [float(day.height)],
            "engaged_rate": [float(day["engaged"].mean()) if day.height else 0.0],
            "skip_rate": [float(day["skip"].mean()) if day.height else 0.0],
            "new_user_share": [float((day["user_impressions"] == 0).mean()) if day.height else 0.0],
        },
        live={"ndcg_at_10": feeds.report["ndcg_at_10"] if sessions else None},
        days=[f"{start:%Y-%m-%d}"],
    )
    return described, sessions


def describe_day(features: pl.DataFrame, model: EngagementModel, weights: dict[str, float], start: datetime) -> Described:
    """The impressions of [start, start + 1 day) as the monitors read them."""
    return _describe(features, model, weights, start)[0]


def describe_days(features: pl.DataFrame, model: EngagementModel, weights: dict[str, float], start: datetime,
                  end: datetime) -> Described:
    """The days of [start, end) pooled (the reference); the live metric weighs each day by its sessions."""
    parts = [_describe(features, model, weights, start + DAY * i) for i in range(max(1, (end - start).days))]
    return Described.pooled([d for d, _ in parts], weights=[sessions for _, sessions in parts])
