"""Expectation suites of the ad click case study: raw tables, features, leakage and the time split."""

from __future__ import annotations

from datetime import datetime

import great_expectations.expectations as gxe
import polars as pl

from expectations.custom import ExpectNoColumnToCorrelateWithLabel
from expectations.runner import WARN, Suite, quarantine, under
from models.ad_click.features import (
    AGGREGATE_FEATURES,
    FEATURE_COLUMNS,
    FEATURE_SCHEMA,
    KEY_COLUMNS,
    LABEL,
    NULLABLE_FEATURES,
)

UTC_TS = pl.Datetime("us", "UTC")
# The raw-input contract (README "Bring your own data"): columns and types every source must provide.
IMPRESSIONS_SCHEMA = {
    "impression_id": pl.String,
    "ts": UTC_TS,
    "user_id": pl.String,
    "ad_id": pl.String,
    "position": pl.Int64,
    "device": pl.String,
    "clicked": pl.Int64,
}
# Optional raw columns: read when present, checked then, and their absence is no error (README says what each means).
OPTIONAL_IMPRESSION_COLUMNS = {"click_ts": UTC_TS}
USERS_SCHEMA = {"user_id": pl.String, "age": pl.Int64, "gender": pl.String, "country": pl.String, "signup_ts": UTC_TS}
ADS_SCHEMA = {"ad_id": pl.String, "advertiser_id": pl.String, "category": pl.String, "created_ts": UTC_TS}
LABEL_CORRELATION_LIMIT = 0.5


def _not_null(*columns: str) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def users_suite() -> Suite:
    return Suite(
        name="ad_click_raw_users",
        dtypes=USERS_SCHEMA,
        id_columns=("user_id",),
        expectations=[
            *_not_null(*USERS_SCHEMA),
            gxe.ExpectColumnValuesToBeUnique(column="user_id"),
            # A mistyped age is a poor feature, not a reason to drop the user's every impression.
            *under(WARN, gxe.ExpectColumnValuesToBeBetween(column="age", min_value=13, max_value=120)),
        ],
    )


def ads_suite() -> Suite:
    return Suite(
        name="ad_click_raw_ads",
        dtypes=ADS_SCHEMA,
        id_columns=("ad_id",),
        expectations=[*_not_null(*ADS_SCHEMA), gxe.ExpectColumnValuesToBeUnique(column="ad_id")],
    )


def impressions_suite(day_start: datetime, day_end: datetime, user_ids: pl.Series, ad_ids: pl.Series,
                      click_times: bool = False) -> Suite:
    """Raw impressions of one day: ids, ranges, the partition's time window and referential integrity.

    A malformed row (bad position, label or device, an unknown user or ad, a click before its impression) is
    quarantined, up to 1% of the rows; duplicate or missing ids, and an impression outside its partition's day (a
    broken export), fail. `click_times`: the data has the optional `click_ts`."""
    optional = []
    if click_times:
        optional = under(quarantine(0.01), gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="click_ts", column_B="ts", or_equal=True, ignore_row_if="either_value_is_missing"))
    return Suite(
        name="ad_click_raw_impressions",
        dtypes={**IMPRESSIONS_SCHEMA, **(OPTIONAL_IMPRESSION_COLUMNS if click_times else {})},
        id_columns=("impression_id", "ts", "user_id", "ad_id"),
        references={"user_id": user_ids, "ad_id": ad_ids},
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("impression_id", "ts", "user_id", "ad_id"),
            gxe.ExpectColumnValuesToBeUnique(column="impression_id"),
            gxe.ExpectColumnValuesToBeBetween(column="ts", min_value=day_start, max_value=day_end, strict_max=True),
            *under(quarantine(0.01),
                   *_not_null("position", "device", "clicked"),
                   gxe.ExpectColumnValuesToBeBetween(column="position", min_value=1),
                   gxe.ExpectColumnValuesToBeInSet(column="clicked", value_set=[0, 1])),
            *optional,
        ],
    )


def features_suite() -> Suite:
    """Feature rows: schema, nulls only where allowed, counts >= 0, rates in [0, 1]."""
    counts = [c for c in AGGREGATE_FEATURES if "_ctr_" not in c] + ["user_ad_impressions_7d"]
    rates = [c for c in AGGREGATE_FEATURES if "_ctr_" in c]
    return Suite(
        name="ad_click_features",
        dtypes=FEATURE_SCHEMA,
        id_columns=("impression_id",),
        expectations=[
            *_not_null(*(c for c in (*KEY_COLUMNS, *FEATURE_COLUMNS, LABEL) if c not in NULLABLE_FEATURES | {"history_asof_ts"})),
            gxe.ExpectColumnValuesToBeUnique(column="impression_id"),
            *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in counts],
            *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1) for c in rates],
            gxe.ExpectColumnValuesToBeBetween(column="seconds_since_user_saw_ad", min_value=0, strict_min=True),
            gxe.ExpectColumnValuesToBeBetween(column="position", min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="hour_of_day", min_value=0, max_value=23),
        ],
    )


def leakage_suite() -> Suite:
    """Point-in-time and target leakage: history strictly before each impression, no label proxy."""
    return Suite(
        name="ad_click_leakage",
        dtypes={},
        exact_columns=False,
        id_columns=("impression_id",),
        expectations=[
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="ts", column_B="history_asof_ts", or_equal=False, ignore_row_if="either_value_is_missing"
            ),
            ExpectNoColumnToCorrelateWithLabel(label_column=LABEL, max_abs_correlation=LABEL_CORRELATION_LIMIT),
        ],
    )


def model_inputs_suite() -> Suite:
    """The label is never one of the model's inputs (validated on a frame of the input names)."""
    return Suite(
        name="ad_click_model_inputs",
        dtypes={"feature": pl.String},
        id_columns=("feature",),
        expectations=[
            gxe.ExpectColumnValuesToBeUnique(column="feature"),
            gxe.ExpectColumnValuesToNotBeInSet(column="feature", value_set=[LABEL, "split", "p_click"]),
        ],
    )


def split_windows(training: pl.DataFrame) -> pl.DataFrame:
    """One row per split in train, validation, test order with its time window and the next split's start."""
    windows = (
        training.filter(pl.col("split").is_not_null())
        .group_by("split")
        .agg(start=pl.col("ts").min(), end=pl.col("ts").max(), rows=pl.len())
    )
    order = pl.DataFrame({"split": ["train", "validation", "test"], "order": [0, 1, 2]})
    return (
        order.join(windows, on="split", how="left")
        .sort("order")
        .with_columns(next_start=pl.col("start").shift(-1))
        .drop("order")
    )


def split_suite() -> Suite:
    """Train, validation and test windows exist, are disjoint in time and come in that order."""
    return Suite(
        name="ad_click_time_split",
        dtypes={},
        exact_columns=False,
        id_columns=("split",),
        expectations=[
            *_not_null("start", "end"),
            gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=1),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="next_start", column_B="end", or_equal=False, ignore_row_if="either_value_is_missing"
            ),
        ],
    )
