"""Expectation suites of similar listings: the raw-input contract, the time split and leakage."""

from __future__ import annotations

import great_expectations.expectations as gxe
import polars as pl

from expectations.runner import WARN, Suite, quarantine, under
from expectations.windows import ends_before_suite, ordered_windows_suite
from models.similar_listings.data import EVENTS

UTC_TS = pl.Datetime("us", "UTC")
# The raw-input contract (README "Similar listings: bring your own data").
LISTINGS_SCHEMA = {
    "listing_id": pl.String, "city": pl.String, "lat": pl.Float64, "lon": pl.Float64, "type": pl.String,
    "price": pl.Float64, "beds": pl.Int64, "created_ts": UTC_TS,
}
SESSIONS_SCHEMA = {
    "session_id": pl.String, "user_id": pl.String, "listing_id": pl.String, "ts": UTC_TS, "position": pl.Int64,
    "event": pl.String,
}


def _not_null(*columns: str) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def listings_suite() -> Suite:
    return Suite(
        name="similar_listings_raw_listings",
        dtypes=LISTINGS_SCHEMA,
        id_columns=("listing_id",),
        expectations=[
            *_not_null("listing_id"),
            gxe.ExpectColumnValuesToBeUnique(column="listing_id"),
            # A listing without a city, a place, a type or a believable price cannot be filtered or given a
            # cold-start embedding: set aside with its sessions' events.
            *under(quarantine(0.01), *_not_null("city", "type", "created_ts"),
                   gxe.ExpectColumnValuesToBeBetween(column="lat", min_value=-90, max_value=90),
                   gxe.ExpectColumnValuesToBeBetween(column="lon", min_value=-180, max_value=180),
                   gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0, strict_min=True, max_value=100_000)),
            # Beds feed nothing the models learn from: an odd count is worth a look, not a lost listing.
            *under(WARN, gxe.ExpectColumnValuesToBeBetween(column="beds", min_value=0, max_value=50)),
        ],
    )


def sessions_suite(listing_ids: pl.Series) -> Suite:
    return Suite(
        name="similar_listings_raw_sessions",
        dtypes=SESSIONS_SCHEMA,
        exact_columns=False,  # validated with the listing's created_ts joined on
        id_columns=("session_id", "listing_id", "event", "ts"),
        references={"listing_id": listing_ids},
        # Events of unknown listings (a quarantined listing's too) are set aside, up to 1% of the events.
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("session_id", "listing_id", "ts", "event"),
            # The same event twice is an id problem: the run stops and says which rows.
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["session_id", "listing_id", "event", "ts"]),
            *under(quarantine(0.01),
                   gxe.ExpectColumnValuesToBeInSet(column="event", value_set=list(EVENTS)),
                   gxe.ExpectColumnValuesToBeBetween(column="position", min_value=1),
                   # An event on a listing before it was listed: a clock or an id error.
                   gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                       column_A="ts", column_B="created_ts", or_equal=True, ignore_row_if="either_value_is_missing")),
            # A guest is only a grouping here: missing ones are worth a look.
            *under(WARN, *_not_null("user_id")),
        ],
    )


def split_suite() -> Suite:
    """Train, validation and test windows exist, hold sessions and bookings, and follow each other in order."""
    return ordered_windows_suite("similar_listings_time_split", ("sessions", "bookings"))


def leakage_suite() -> Suite:
    """Each model input ends before the window it is judged on (one row per input, see leakage_audit)."""
    return ends_before_suite("similar_listings_leakage")
