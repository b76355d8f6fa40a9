"""Point-in-time-correct features for ad click prediction, computed with polars.

Every aggregate describing an impression at time t is computed from events in [t - window, t): strictly
before the impression, so an event at or after t (including the impression's own click) cannot move it.
"""

from __future__ import annotations

import bisect
import functools
from datetime import datetime, timedelta, timezone

import polars as pl

LABEL = "clicked"
# Delayed feedback: with the optional raw column `click_ts` (null when not clicked), the label is a click within
# this long after the impression, and a click counts in history features only from the moment it happened. Data
# without `click_ts` keeps the older meaning: `clicked` as given, each click known at its impression's time.
CLICK_TS = "click_ts"
DEFAULT_CLICK_WINDOW = timedelta(hours=1)
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
# The sparse ids the networks embed (models.ad_click.deep); the booster and the baseline never read them.
ID_COLUMNS = ("user_id", "ad_id", "advertiser_id")
NULLABLE_FEATURES = frozenset({"seconds_since_user_saw_ad"})
_UTC = pl.Datetime("us", "UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
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


def ctr(impressions: pl.Expr, clicks: pl.Expr) -> pl.Expr:
    return ((clicks + PRIOR_STRENGTH * PRIOR_CTR) / (impressions + PRIOR_STRENGTH)).cast(pl.Float32)


@functools.cache  # expressions are immutable; building them costs more than a serving request's data work
def _derived_features() -> list[pl.Expr]:
    """Features derived from the row's own time and entities, identical offline and online.

    Needs ts, signup_ts, created_ts, position, age and _last_user_ad_us (the user's last view of the ad).
    """
    return [
        ((pl.col("ts").dt.epoch("us") - pl.col("_last_user_ad_us")) / 1e6).cast(pl.Float32).alias("seconds_since_user_saw_ad"),
        pl.col("ts").dt.hour().cast(pl.Int32).alias("hour_of_day"),
        pl.col("ts").dt.weekday().cast(pl.Int32).alias("day_of_week"),
        ((pl.col("ts") - pl.col("signup_ts")).dt.total_seconds() / 86_400).cast(pl.Float32).alias("user_tenure_days"),
        ((pl.col("ts") - pl.col("created_ts")).dt.total_seconds() / 86_400).cast(pl.Float32).alias("ad_age_days"),
        pl.col("position").cast(pl.Int32),
        pl.col("age").cast(pl.Int32),
    ]


def _age_bucket() -> pl.Expr:
    return pl.col("age").cut(list(AGE_BUCKET_EDGES), left_closed=True).cast(pl.String).alias("age_bucket")


def _label_and_click_time(columns, click_window: timedelta = DEFAULT_CLICK_WINDOW) -> list[pl.Expr]:
    """The label and `_click_us`, when each click became known (null for none), for a frame with `columns`."""
    if CLICK_TS in columns:
        click = pl.col(CLICK_TS)
        return [(click.is_not_null() & (click - pl.col("ts") <= click_window)).cast(pl.Int64).alias(LABEL),
                click.dt.epoch("us").alias("_click_us")]
    return [pl.col(LABEL), pl.when(pl.col(LABEL) == 1).then(_epoch_us("ts")).alias("_click_us")]


def _events(impressions: pl.DataFrame, users: pl.DataFrame, ads: pl.DataFrame,
            click_window: timedelta = DEFAULT_CLICK_WINDOW) -> pl.LazyFrame:
    return (
        impressions.lazy()
        .join(ads.lazy().select("ad_id", "advertiser_id", "category", "created_ts"), on="ad_id", how="left")
        .join(users.lazy().select("user_id", "age", "gender", "country", "signup_ts"), on="user_id", how="left")
        .with_columns(*_label_and_click_time(impressions.columns, click_window))
        .with_columns(
            _one=pl.lit(1, pl.UInt32),
            _ts_us=_epoch_us("ts"),
            age_bucket=_age_bucket(),
        )
    )


def point_in_time_features(
    impressions: pl.DataFrame,
    users: pl.DataFrame,
    ads: pl.DataFrame,
    targets_from: datetime | None = None,
    click_window: timedelta = DEFAULT_CLICK_WINDOW,
) -> pl.DataFrame:
    """Features for the impressions at or after `targets_from`; earlier impressions serve only as history.

    `impressions` must hold every event of the look-back window before `targets_from` for the aggregates
    to be complete. The result has KEY_COLUMNS, FEATURE_COLUMNS and the label, one row per target impression.
    An impression's click counts in the history of the impressions after the click, not after the impression.
    """
    # Ties in time are ordered by id: the joins in _events leave their order to chance, and outputs (training rows
    # among them) must come out the same on every run.
    events = _events(impressions, users, ads, click_window).sort("ts", "impression_id").collect()
    targets = events.lazy()
    if targets_from is not None:
        targets = targets.filter(pl.col("ts") >= targets_from)
    for entity, (keys, windows) in ENTITIES.items():
        targets = _window_counts(targets, events, keys, windows, entity, last=entity in HISTORY_ENTITIES)
    targets = _window_counts(targets, events, ("user_id", "ad_id"), ("7d",), "user_ad", last=True)
    features = targets.with_columns(
        *_ctr_columns(),
        *_derived_features(),
        history_asof_ts=pl.max_horizontal([f"_last_{e}_us" for e in HISTORY_ENTITIES]).cast(pl.Datetime("us", "UTC")),
    )
    return features.select(*KEY_COLUMNS, *FEATURE_COLUMNS, LABEL).collect()


_NULL_KEY = "\x00null"  # a missing key (an unknown user's country) is a group of its own, as in a group-by


def _window_counts(
    targets: pl.LazyFrame, events: pl.DataFrame, keys: tuple[str, ...], windows: tuple[str, ...], entity: str, last: bool
) -> pl.LazyFrame:
    """Adds <entity>_impressions_<w> and <entity>_clicks_<w>: the entity's impressions in [ts - w, ts) and the clicks
    that happened in [ts - w, ts) (a click counts from its own time), and with `last` _last_<entity>_us, its latest
    impression in the look-back window before ts.

    A window's count is a difference of running totals: the entity's impressions (clicks) before ts minus those
    before ts - w, each found by an as-of join on the entity's running totals (strictly earlier rows, so an
    impression never counts itself or its ties). That reads each target row once per window, not every history row.
    """
    joined = [f"_key_{k}" for k in keys]
    key_columns = [pl.col(k).fill_null(_NULL_KEY).alias(j) for k, j in zip(keys, joined)]
    shown = (
        events.lazy()
        .select(*key_columns, "ts", "_ts_us", "_one")
        .with_columns(_n=pl.col("_one").cum_sum().over(joined))
        .select(*joined, "ts", "_ts_us", "_n")
        .collect()
        .lazy()
    )
    clicked = (
        events.lazy()
        .filter(pl.col("_click_us").is_not_null())
        .select(*key_columns, pl.col("_click_us").cast(pl.Datetime("us", "UTC")).alias("ts"), "_one")
        .sort("ts")
        .with_columns(_c=pl.col("_one").cum_sum().over(joined))
        .select(*joined, "ts", "_c")
        .collect()
        .lazy()
    )
    targets = targets.with_columns(key_columns)

    def before(offset: timedelta, suffix: str, with_last: bool = False) -> None:
        nonlocal targets
        at = f"_at{suffix}"
        targets = targets.with_columns((pl.col("ts") - offset).alias(at))
        for totals, picked in ((shown, ["_n", "_ts_us"] if with_last else ["_n"]), (clicked, ["_c"])):
            right = totals.select(*joined, pl.col("ts").alias(at), *[pl.col(c).alias(f"{c}{suffix}") for c in picked])
            targets = targets.join_asof(right, on=at, by=joined, strategy="backward", allow_exact_matches=False,
                                        check_sortedness=False)
        targets = targets.with_columns(pl.col(f"_n{suffix}").fill_null(0), pl.col(f"_c{suffix}").fill_null(0))

    before(timedelta(0), "_now", with_last=last)
    names = []
    for window in windows:
        before(_duration(window), f"_{window}")
        targets = targets.with_columns(
            (pl.col("_n_now") - pl.col(f"_n_{window}")).cast(pl.UInt32).alias(f"{entity}_impressions_{window}"),
            (pl.col("_c_now") - pl.col(f"_c_{window}")).cast(pl.UInt32).alias(f"{entity}_clicks_{window}"),
        )
        names += [f"_at_{window}", f"_n_{window}", f"_c_{window}"]
    if last:
        recent = pl.col("_ts_us_now") >= pl.col("_ts_us") - int(LOOKBACK.total_seconds() * 1_000_000)
        targets = targets.with_columns(pl.when(recent).then(pl.col("_ts_us_now")).alias(f"_last_{entity}_us"))
        names.append("_ts_us_now")
    return targets.drop(*names, "_at_now", "_n_now", "_c_now", *joined)


@functools.cache
def _ctr_columns() -> list[pl.Expr]:
    return [
        ctr(pl.col(f"{entity}_impressions_{window}"), pl.col(f"{entity}_clicks_{window}")).alias(f"{entity}_ctr_{window}")
        for entity, (_, windows) in ENTITIES.items()
        for window in windows
    ]


# ---- Serving: the same features from a snapshot of the latest aggregates ----------------------------------

COUNT_COLUMNS = tuple(c for c in AGGREGATE_FEATURES if "_ctr_" not in c)
REQUEST_COLUMNS = ("user_id", "ad_id", "ts", "position", "device")


def online_snapshot(
    impressions: pl.DataFrame, users: pl.DataFrame, ads: pl.DataFrame, as_of: datetime
) -> dict[str, pl.DataFrame]:
    """Per entity, the aggregates a request at `as_of` would see: impressions in [as_of - window, as_of) and the
    clicks that happened in it (a click not yet happened at `as_of` is not known).

    Entities: `user` (demographics, counts, and the ads seen in the last 7 days with count and last view),
    `ad` (attributes and counts), and one frame of counts per other entity of ENTITIES. An entity with no
    event in the last 7 days has no row: serving treats it as zero history, as the offline features do.
    """
    as_of_us = (as_of - _EPOCH) // _MICROSECOND

    def shown_since(start: datetime) -> pl.Expr:
        return (pl.col("ts") >= start) & (pl.col("ts") < as_of)

    def clicked_since(start: datetime) -> pl.Expr:
        start_us = (start - _EPOCH) // _MICROSECOND
        return (pl.col("_click_us") >= start_us) & (pl.col("_click_us") < as_of_us)

    events = _events(impressions, users, ads).filter(shown_since(as_of - LOOKBACK) | clicked_since(as_of - LOOKBACK))
    frames: dict[str, pl.DataFrame] = {}
    for entity, (keys, windows) in ENTITIES.items():
        aggregations = []
        for window in windows:
            start = as_of - _duration(window)
            aggregations += [
                pl.col("_one").filter(shown_since(start)).sum().cast(pl.UInt32).alias(f"{entity}_impressions_{window}"),
                pl.col("_one").filter(clicked_since(start)).sum().cast(pl.UInt32).alias(f"{entity}_clicks_{window}"),
            ]
        frames[entity] = events.group_by(keys).agg(aggregations).collect()
    seen = (
        events.filter(shown_since(as_of - LOOKBACK)).group_by("user_id", "ad_id")
        .agg(n=pl.len().cast(pl.UInt32), last_us=pl.col("_ts_us").max())
        .group_by("user_id")
        .agg(recent_ads=pl.struct("ad_id", "n", "last_us"))
    )
    user_attributes = users.lazy().select("user_id", "age", "gender", "country", "signup_ts")
    frames["user"] = (
        user_attributes.join(frames["user"].lazy(), on="user_id", how="left")
        .join(seen, on="user_id", how="left")
        .collect()
    )
    ad_attributes = ads.lazy().select("ad_id", "advertiser_id", "category", "created_ts")
    frames["ad"] = ad_attributes.join(frames["ad"].lazy(), on="ad_id", how="left").collect()
    return frames


def _duration(window: str) -> timedelta:
    return {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}[window]


def online_features(requests: pl.DataFrame, records: dict[str, list[dict | None]]) -> pl.DataFrame:
    """ID_COLUMNS and FEATURE_COLUMNS for request rows (REQUEST_COLUMNS) from online-store records, one list per
    entity (an unknown ad's advertiser is null).

    `records[entity][i]` is the record of request i's entity (None when unknown): the same derivations as
    the offline features, so a snapshot taken at the request time gives identical values.
    """
    n = requests.height
    columns: dict[str, list] = {c: [] for c in COUNT_COLUMNS}
    attributes: dict[str, list] = {c: [] for c in ("age", "gender", "country", "signup_ts", "advertiser_id", "category", "created_ts")}
    user_ad_n, user_ad_last = [], []
    for i in range(n):
        user = records["user"][i] or {}
        ad = records["ad"][i] or {}
        for column in attributes:
            attributes[column].append(user.get(column, ad.get(column)))
        recent = (user.get("recent_ads") or {}).get(requests["ad_id"][i])
        user_ad_n.append(recent[0] if recent else 0)
        user_ad_last.append(recent[1] if recent else None)
        for entity, (_, windows) in ENTITIES.items():
            record = records[entity][i] or {}
            for window in windows:
                for stat in ("impressions", "clicks"):
                    name = f"{entity}_{stat}_{window}"
                    columns[name].append(record.get(name) or 0)
    utc = pl.Datetime("us", "UTC")
    frame = requests.with_columns(
        *[pl.Series(c, v, dtype=pl.UInt32) for c, v in columns.items()],
        pl.Series("age", attributes["age"], dtype=pl.Int64),
        *[pl.Series(c, attributes[c], dtype=pl.String) for c in ("gender", "country", "advertiser_id", "category")],
        *[pl.Series(c, attributes[c], dtype=pl.Int64).cast(utc) for c in ("signup_ts", "created_ts")],
        pl.Series("user_ad_impressions_7d", user_ad_n, dtype=pl.UInt32),
        pl.Series("_last_user_ad_us", user_ad_last, dtype=pl.Int64),
        pl.col("ts").cast(utc),
    )
    return frame.with_columns(*_ctr_columns(), *_derived_features()).select(*ID_COLUMNS, *FEATURE_COLUMNS)


def entity_keys(requests: pl.DataFrame, users: dict[str, dict | None], ads: dict[str, dict | None]) -> dict[str, list[str | None]]:
    """Store keys of every entity a request row needs, given the user and ad records already fetched."""
    keys: dict[str, list[str | None]] = {entity: [] for entity in ENTITIES if entity not in ("user", "ad")}
    for user_id, ad_id in zip(requests["user_id"], requests["ad_id"]):
        user, ad = users.get(user_id) or {}, ads.get(ad_id) or {}
        category = ad.get("category")
        values = {
            "user_id": user_id,
            "ad_id": ad_id,
            "advertiser_id": ad.get("advertiser_id"),
            "category": category,
            "gender": user.get("gender"),
            "country": user.get("country"),
            "age_bucket": age_bucket(user.get("age")),
        }
        for entity in keys:
            parts = [values[k] for k in ENTITIES[entity][0]]
            keys[entity].append(None if any(p is None for p in parts) else entity_key(parts))
    return keys


def entity_key(parts) -> str:
    return "|".join(str(p) for p in parts)


def age_bucket(age: int | None) -> str | None:
    """The label polars' cut gives the age (offline features key on it), without building a Series."""
    if age is None:
        return None
    i = bisect.bisect_right(AGE_BUCKET_EDGES, age)
    low = "-inf" if i == 0 else str(AGE_BUCKET_EDGES[i - 1])
    high = "inf" if i == len(AGE_BUCKET_EDGES) else str(AGE_BUCKET_EDGES[i])
    return f"[{low}, {high})"


def day_bounds(day: str) -> tuple[datetime, datetime]:
    """[start, end) of a partition day such as '2026-01-05', in UTC."""
    start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
    return start, start + timedelta(days=1)
