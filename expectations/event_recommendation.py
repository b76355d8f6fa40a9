"""Expectation suites of event recommendation: the raw-input contract, the time split and leakage."""

from __future__ import annotations

import great_expectations.expectations as gxe
import polars as pl

from expectations.runner import WARN, Suite, quarantine, under
from expectations.windows import ordered_windows_suite
from models.event_recommendation.data import KINDS, LABEL

UTC_TS = pl.Datetime("us", "UTC")
# The raw-input contract (README "Event recommendation: bring your own data").
USERS_SCHEMA = {"user_id": pl.String, "city": pl.String, "lat": pl.Float64, "lon": pl.Float64, "age": pl.Int64,
                "gender": pl.String}
EVENTS_SCHEMA = {
    "event_id": pl.String, "host_id": pl.String, "category": pl.String, "description": pl.String, "price": pl.Float64,
    "lat": pl.Float64, "lon": pl.Float64, "city": pl.String, "start_ts": UTC_TS, "created_ts": UTC_TS, "capacity": pl.Int64,
}
FRIENDSHIPS_SCHEMA = {"user_id": pl.String, "friend_id": pl.String}
INTERACTIONS_SCHEMA = {"user_id": pl.String, "event_id": pl.String, "kind": pl.String, "ts": UTC_TS,
                       "invitee_id": pl.String}


def _coordinates() -> list:
    return [gxe.ExpectColumnValuesToBeBetween(column="lat", min_value=-90, max_value=90),
            gxe.ExpectColumnValuesToBeBetween(column="lon", min_value=-180, max_value=180)]


def users_suite() -> Suite:
    return Suite(
        name="event_recommendation_raw_users",
        dtypes=USERS_SCHEMA,
        id_columns=("user_id",),
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="user_id"),
            gxe.ExpectColumnValuesToBeUnique(column="user_id"),
            # Without a home the location filter and every distance are unknown: set aside, up to 1%.
            *under(quarantine(0.01), gxe.ExpectColumnValuesToNotBeNull(column="lat"),
                   gxe.ExpectColumnValuesToNotBeNull(column="lon"), *_coordinates()),
            # Age and gender are two features among many: an odd value is worth a look, not a lost user.
            *under(WARN, gxe.ExpectColumnValuesToBeBetween(column="age", min_value=13, max_value=110),
                   gxe.ExpectColumnValuesToNotBeNull(column="city")),
        ],
    )


def events_suite() -> Suite:
    return Suite(
        name="event_recommendation_raw_events",
        dtypes=EVENTS_SCHEMA,
        id_columns=("event_id",),
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="event_id"),
            gxe.ExpectColumnValuesToBeUnique(column="event_id"),
            # An event without a place, a start, a sale date, a price or a capacity cannot be filtered or ranked.
            *under(quarantine(0.01),
                   *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ("lat", "lon", "start_ts", "created_ts", "category")],
                   *_coordinates(),
                   gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0, max_value=100_000),
                   gxe.ExpectColumnValuesToBeBetween(column="capacity", min_value=1),
                   gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="start_ts", column_B="created_ts", or_equal=True,
                                                               ignore_row_if="either_value_is_missing")),
            # No description only costs the description-similarity feature (0).
            *under(WARN, gxe.ExpectColumnValuesToNotBeNull(column="description")),
        ],
    )


def friendships_suite(user_ids: pl.Series) -> Suite:
    return Suite(
        name="event_recommendation_raw_friendships",
        dtypes=FRIENDSHIPS_SCHEMA,
        id_columns=("user_id", "friend_id"),
        references={"user_id": user_ids, "friend_id": user_ids},
        reference_policy=quarantine(0.01),
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="user_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="friend_id"),
            # A pair listed both ways, or twice, is one friendship: the features make the graph symmetric and
            # count each pair once, so duplicates need no expectation.
        ],
    )


def interactions_suite(user_ids: pl.Series, event_ids: pl.Series) -> Suite:
    return Suite(
        name="event_recommendation_raw_interactions",
        dtypes=INTERACTIONS_SCHEMA,
        exact_columns=False,  # validated with the event's created_ts joined on
        id_columns=("user_id", "event_id", "kind", "ts"),
        references={"user_id": user_ids, "event_id": event_ids, "invitee_id": user_ids},
        # Interactions of unknown (or quarantined) users and events are set aside, up to 1%.
        reference_policy=quarantine(0.01),
        expectations=[
            *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ("user_id", "event_id", "kind", "ts")],
            # The same interaction twice would count twice in every "so far" feature: the run stops.
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["user_id", "event_id", "kind", "ts", "invitee_id"]),
            *under(quarantine(0.01),
                   gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=list(KINDS)),
                   # An interaction with an event before it went on sale: a clock or an id error.
                   gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="ts", column_B="created_ts", or_equal=True,
                                                               ignore_row_if="either_value_is_missing")),
        ],
    )


def split_suite() -> Suite:
    """Train, validation and test windows exist, hold impressions and registrations, and follow each other."""
    return ordered_windows_suite("event_recommendation_time_split", ("impressions", "registrations"))


def model_inputs_suite() -> Suite:
    """The label and what only the evaluation may read are never model inputs (a frame of the input names)."""
    return Suite(
        name="event_recommendation_model_inputs",
        dtypes={"feature": pl.String},
        id_columns=("feature",),
        expectations=[
            gxe.ExpectColumnValuesToBeUnique(column="feature"),
            gxe.ExpectColumnValuesToNotBeInSet(column="feature", value_set=[LABEL, "registered_ts", "split", "p_register"]),
        ],
    )


def point_in_time_suite() -> Suite:
    """One row per growing count (the point-in-time audit): every sampled row equals its recount from the raw events
    strictly before the impression."""
    return Suite(
        name="event_recommendation_point_in_time",
        dtypes={},
        exact_columns=False,
        id_columns=("feature",),
        expectations=[gxe.ExpectColumnValuesToBeBetween(column="rows_not_as_of_impression", min_value=0, max_value=0),
                      gxe.ExpectColumnValuesToBeBetween(column="rows_checked", min_value=1)],
    )
