"""Point-in-time-correct features for ad click prediction, computed with polars.

Every aggregate describing an impression at time t is computed from events in [t - window, t): strictly
before the impression, so an event at or after t (including the impression's own click) cannot move it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

LABEL = "clicked"
LOOKBACK = timedelta(days=7)
WINDOWS = ("1h", "1d", "7d")
SEGMENT_WINDOWS = ("1d", "7d")
AGE_BUCKET_EDGES = (25, 35, 45, 55)
# Smoothed CTR = (clicks + PRIOR_STRENGTH * PRIOR_CTR) / (impressions + PRIOR_STRENGTH): a fixed prior rather
# than one estimated from data, so that no statistic of the label leaks across the time split.
PRIOR_CTR = 0.03
PRIOR_STRENGTH = 20.0
# Entity -> (key columns, windows). The segment x category crosses carry what a user's own sparse history
# cannot: how people of that age, gender or country respond to the category lately.
ENTITIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "user": (("user_id",), WINDOWS),
    "ad": (("ad_id",), WINDOWS),
    "advertiser": (("advertiser_id",), WINDOWS),
    "user_category": (("user_id", "category"), WINDOWS),
    "age_category": (("age_bucket", "category"), SEGMENT_WINDOWS),
    "gender_category": (("gender", "category"), SEGMENT_WINDOWS),
    "country_category": (("country", "category"), SEGMENT_WINDOWS),
}
# Entities whose last event bounds the row's history (segments are shared by many users and always recent).
HISTORY_ENTITIES = ("user", "ad", "advertiser", "user_category")
CATEGORICAL_FEATURES = ("device", "gender", "country", "category")
CONTEXT_FEATURES = ("position", "hour_of_day", "day_of_week", "age", "user_tenure_days", "ad_age_days")
FATIGUE_FEATURES = ("user_ad_impressions_7d", "seconds_since_user_saw_ad")
AGGREGATE_FEATURES = tuple(
    f"{entity}_{stat}_{window}"
    for entity, (_, windows) in ENTITIES.items()
    for window in windows
    for stat in ("impressions", "clicks", "ctr")
)
NUMERIC_FEATURES = CONTEXT_FEATURES + FATIGUE_FEATURES + AGGREGATE_FEATURES
FEATURE_COLUMNS = CATEGORICAL_FEATURES + NUMERIC_FEATURES
# Columns that identify and time-stamp each row next to its features; history_asof_ts is the latest event
# any aggregate of the row used, which the leakage suite checks is strictly before ts.
KEY_COLUMNS = ("impression_id", "ts", "user_id", "ad_id", "advertiser_id", "history_asof_ts")
NULLABLE_FEATURES = frozenset({"seconds_since_user_saw_ad"})
_UTC = pl.Datetime("us", "UTC")
FEATURE_SCHEMA: dict[str, pl.DataType] = {
    **{c: pl.String for c in ("impression_id", "user_id", "ad_id", "advertiser_id", *CATEGORICAL_FEATURES)},
    "ts": _UTC,
    "history_asof_ts": _UTC,
    **{c: pl.Int32 for c in ("position", "hour_of_day", "day_of_week", "age")},
    **{c: pl.Float32 for c in ("user_tenure_days", "ad_age_days", "seconds_since_user_saw_ad")},
    "user_ad_impressions_7d": pl.UInt32,
    **{c: pl.Float32 if "_ctr_" in c else pl.UInt32 for c in AGGREGATE_FEATURES},
    LABEL: pl.Int64,
}


def _epoch_us(column: str) -> pl.Expr:
    return pl.col(column).dt.epoch("us")


def point_in_time_features(
    impressions: pl.DataFrame,
    users: pl.DataFrame,
    ads: pl.DataFrame,
    targets_from: datetime | None = None,
) -> pl.DataFrame:
    """Features for the impressions at or after `targets_from`; earlier impressions serve only as history.

    `impressions` must hold every event of the look-back window before `targets_from` for the aggregates
    to be complete. The result has KEY_COLUMNS, FEATURE_COLUMNS and the label, one row per target impression.
    """
    events = (
        impressions.lazy()
        .join(ads.lazy().select("ad_id", "advertiser_id", "category", "created_ts"), on="ad_id", how="left")
        .join(users.lazy().select("user_id", "age", "gender", "country", "signup_ts"), on="user_id", how="left")
        .with_columns(
            _one=pl.lit(1, pl.UInt32),
            _clicked=pl.col(LABEL).cast(pl.UInt32),
            _ts_us=_epoch_us("ts"),
            age_bucket=pl.col("age").cut(list(AGE_BUCKET_EDGES), left_closed=True),
        )
        .sort("ts", maintain_order=True)
    )
    aggregates: list[pl.Expr] = []
    last_seen: list[pl.Expr] = []
    for entity, (keys, windows) in ENTITIES.items():
        for window in windows:
            n = pl.col("_one").rolling_sum_by("ts", window, closed="left").over(keys).fill_null(0)
            c = pl.col("_clicked").rolling_sum_by("ts", window, closed="left").over(keys).fill_null(0)
            aggregates += [
                n.alias(f"{entity}_impressions_{window}"),
                c.alias(f"{entity}_clicks_{window}"),
                ((c + PRIOR_STRENGTH * PRIOR_CTR) / (n + PRIOR_STRENGTH)).cast(pl.Float32).alias(f"{entity}_ctr_{window}"),
            ]
        if entity in HISTORY_ENTITIES:
            last_seen.append(
                pl.col("_ts_us").rolling_max_by("ts", "7d", closed="left").over(keys).alias(f"_last_{entity}_us")
            )
    user_ad = ("user_id", "ad_id")
    aggregates += [
        pl.col("_one").rolling_sum_by("ts", "7d", closed="left").over(user_ad).fill_null(0).alias("user_ad_impressions_7d"),
        pl.col("_ts_us").rolling_max_by("ts", "7d", closed="left").over(user_ad).alias("_last_user_ad_us"),
    ]
    features = events.with_columns(aggregates + last_seen)
    if targets_from is not None:
        features = features.filter(pl.col("ts") >= targets_from)
    features = features.with_columns(
        history_asof_ts=pl.max_horizontal([f"_last_{e}_us" for e in HISTORY_ENTITIES]).cast(pl.Datetime("us", "UTC")),
        seconds_since_user_saw_ad=((pl.col("_ts_us") - pl.col("_last_user_ad_us")) / 1e6).cast(pl.Float32),
        hour_of_day=pl.col("ts").dt.hour().cast(pl.Int32),
        day_of_week=pl.col("ts").dt.weekday().cast(pl.Int32),
        user_tenure_days=((pl.col("ts") - pl.col("signup_ts")).dt.total_seconds() / 86_400).cast(pl.Float32),
        ad_age_days=((pl.col("ts") - pl.col("created_ts")).dt.total_seconds() / 86_400).cast(pl.Float32),
        position=pl.col("position").cast(pl.Int32),
        age=pl.col("age").cast(pl.Int32),
    )
    return features.select(*KEY_COLUMNS, *FEATURE_COLUMNS, LABEL).collect()


def day_bounds(day: str) -> tuple[datetime, datetime]:
    """[start, end) of a partition day such as '2026-01-05', in UTC."""
    start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
    return start, start + timedelta(days=1)
