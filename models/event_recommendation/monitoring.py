"""One day of event-recommendation monitoring (shared by the assets and the tests).

A day is described by what users were shown (distance, price, time to the event, the event's category), by the
champion's predictions on it, by volumes (impressions, the registration rate, the share of impressions to users
without a past registration) and, once the day's labels are in, by the champion's mAP@10 (the live metric). The
reference is the same description of the champion's held-out test days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from models.drift import Described, Distribution, Level, LiveMetric, Monitors
from models.event_recommendation.data import LABEL
from models.event_recommendation.evaluation import rank_users
from models.event_recommendation.features import feature_matrix
from models.event_recommendation.ranker import Ranker

DAY = timedelta(days=1)

MONITORS = Monitors(
    distributions=(
        Distribution("distance_km"),
        Distribution("price_log"),
        Distribution("hours_to_event"),
        Distribution("category", categorical=True),
        Distribution("p_register", label="prediction"),
    ),
    levels=(
        Level("impressions", relative=True, max_rise=0.5, max_fall=0.5),
        Level("registration_rate", relative=True, max_rise=0.4, max_fall=0.4),
        Level("new_user_share", relative=False, max_rise=0.15),
    ),
    # A day holds a couple of hundred users who register; their mAP@10 moves by a few hundredths from day to day.
    live=(LiveMetric("map_at_10", higher_is_better=True, tolerance=0.15),),
)


def _describe(features: pl.DataFrame, events: pl.DataFrame, ranker: Ranker, start: datetime) -> tuple[Described, int]:
    day = features.filter((pl.col("ts") >= start) & (pl.col("ts") < start + DAY)).join(
        events.select("event_id", "category"), on="event_id", how="left", maintain_order="left")
    p = ranker.predict(feature_matrix(day)) if day.height else np.zeros(0)
    ranked = rank_users(day, p) if day.height else None
    users = len(ranked.users) if ranked else 0
    described = Described(
        distributions={
            "distance_km": day["distance_km"].to_list(),
            "price_log": day["price_log"].to_list(),
            "hours_to_event": day["hours_to_event"].to_list(),
            "category": day["category"].fill_null("unknown").to_list(),
            "p_register": p.tolist(),
        },
        levels={
            "impressions": [float(day.height)],
            "registration_rate": [float(day[LABEL].mean()) if day.height else 0.0],
            "new_user_share": [float((day["user_registrations"] == 0).mean()) if day.height else 0.0],
        },
        live={"map_at_10": ranked.report["map_at_10"] if users else None},
        days=[f"{start:%Y-%m-%d}"],
    )
    return described, users


def describe_day(features: pl.DataFrame, events: pl.DataFrame, ranker: Ranker, start: datetime) -> Described:
    """The impressions of [start, start + 1 day) as the monitors read them."""
    return _describe(features, events, ranker, start)[0]


def describe_days(features: pl.DataFrame, events: pl.DataFrame, ranker: Ranker, start: datetime, end: datetime) -> Described:
    """The days of [start, end) pooled (the reference); the live metric weighs each day by its users who registered."""
    parts = [_describe(features, events, ranker, start + DAY * i) for i in range(max(1, (end - start).days))]
    return Described.pooled([d for d, _ in parts], weights=[users for _, users in parts])
