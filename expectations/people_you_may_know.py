"""Expectation suites of people you may know: the raw-input contract, the snapshots' windows and leakage."""

from __future__ import annotations

import great_expectations.expectations as gxe
import polars as pl

from expectations.runner import WARN, Suite, quarantine, under
from expectations.windows import ends_before_suite, ordered_windows_suite

UTC_TS = pl.Datetime("us", "UTC")
# The raw-input contract (README "People you may know: bring your own data").
# school, company, industry, city: free text as members wrote it (any spelling; standardized by the pipeline), each
# optional (a missing column is all unknown); signup_ts: optional (account age unknown).
USERS_SCHEMA = {"user_id": pl.String, "school": pl.String, "company": pl.String, "industry": pl.String,
                "city": pl.String, "signup_ts": UTC_TS}
USERS_OPTIONAL = ("school", "company", "industry", "city", "signup_ts")
# One row per connection, in either order (user_a, user_b) or (user_b, user_a), made at ts.
CONNECTIONS_SCHEMA = {"user_a": pl.String, "user_b": pl.String, "ts": UTC_TS}
REQUESTS_SCHEMA = {"request_id": pl.String, "from_user": pl.String, "to_user": pl.String, "ts": UTC_TS,
                   "accepted": pl.Boolean}
PROFILE_VIEWS_SCHEMA = {"viewer": pl.String, "viewed": pl.String, "ts": UTC_TS}
MAX_ATTRIBUTE_CHARS = 200


def _not_null(*columns: str) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def users_suite(present: list[str]) -> Suite:
    optional = [c for c in USERS_OPTIONAL if c in present]
    return Suite(
        name="people_you_may_know_raw_users",
        dtypes={c: t for c, t in USERS_SCHEMA.items() if c not in USERS_OPTIONAL or c in optional},
        exact_columns=False,  # validated with each attribute's length joined on
        id_columns=("user_id",),
        expectations=[
            *_not_null("user_id"),
            gxe.ExpectColumnValuesToBeUnique(column="user_id"),
            # A pasted paragraph is not a school or a company: set aside, up to 1%.
            *under(quarantine(0.01), *[gxe.ExpectColumnValuesToBeBetween(column=f"{c}_chars", min_value=0,
                                                                         max_value=MAX_ATTRIBUTE_CHARS)
                                       for c in ("school", "company", "industry", "city") if c in optional]),
            # Members without a school, company or city can still be suggested through friends; most of them without
            # one is worth a look (a column read from the wrong field?).
            *under(WARN, *[gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=0.5)
                           for c in ("school", "company", "city") if c in optional]),
        ],
    )


def connections_suite(user_ids: pl.Series) -> Suite:
    return Suite(
        name="people_you_may_know_raw_connections",
        dtypes=CONNECTIONS_SCHEMA,
        exact_columns=False,  # validated with the unordered pair joined on
        id_columns=("user_a", "user_b"),
        references={"user_a": user_ids, "user_b": user_ids},
        # A connection of an unknown (or quarantined) member is set aside, up to 1%.
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("user_a", "user_b"),
            # The same connection twice (either way round) would count twice in mutual friends: the run stops.
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["lo", "hi"]),
            # A member connected to themselves, or a connection without a time, cannot be placed in the graph.
            *under(quarantine(0.01), gxe.ExpectColumnValuesToBeInSet(column="distinct", value_set=[True]),
                   gxe.ExpectColumnValuesToNotBeNull(column="ts")),
        ],
    )


def requests_suite(user_ids: pl.Series) -> Suite:
    return Suite(
        name="people_you_may_know_raw_requests",
        dtypes=REQUESTS_SCHEMA,
        exact_columns=False,
        id_columns=("request_id",),
        references={"from_user": user_ids, "to_user": user_ids},
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("request_id"),
            gxe.ExpectColumnValuesToBeUnique(column="request_id"),
            *under(quarantine(0.01), *_not_null("from_user", "to_user", "ts"),
                   gxe.ExpectColumnValuesToBeInSet(column="distinct", value_set=[True])),
            # Unknown outcome: read as not accepted.
            *under(WARN, gxe.ExpectColumnValuesToNotBeNull(column="accepted")),
        ],
    )


def profile_views_suite(user_ids: pl.Series) -> Suite:
    return Suite(
        name="people_you_may_know_raw_profile_views",
        dtypes=PROFILE_VIEWS_SCHEMA,
        exact_columns=False,
        id_columns=("viewer", "viewed"),
        references={"viewer": user_ids, "viewed": user_ids},
        # Views are plentiful and only a feature: set aside up to 5% with unknown members.
        reference_policy=quarantine(0.05),
        expectations=[
            *_not_null("viewer", "viewed"),
            *under(quarantine(0.05), gxe.ExpectColumnValuesToNotBeNull(column="ts")),
        ],
    )


def split_suite() -> Suite:
    """Training, validation and test label windows hold new connections, follow each other, and have a graph before."""
    return ordered_windows_suite("people_you_may_know_snapshots", ("new_connections", "graph_connections"))


def leakage_suite() -> Suite:
    """Each snapshot's input graph ends before its label window starts."""
    return ends_before_suite("people_you_may_know_no_leakage")
