"""Expectation suites of the news feed: the raw-input contract, the time split and leakage."""

from __future__ import annotations

import great_expectations.expectations as gxe
import polars as pl

from expectations.runner import WARN, Suite, quarantine, under
from expectations.windows import ordered_windows_suite
from models.news_feed.data import HEADS, LABELS

UTC_TS = pl.Datetime("us", "UTC")
REACTIONS = ("click", "like", "comment", "share", "hide", "block")
TIE_KINDS = ("family", "close_friend", "friend", "follow")
MEDIA = ("text", "image", "video")
# The raw-input contract (README "News feed: bring your own data").
USERS_SCHEMA = {"user_id": pl.String, "age": pl.Int64, "gender": pl.String, "joined_ts": UTC_TS}
# `kind` family, close_friend and friend are mutual (listed once or both ways); follow is one way: user_id follows
# friend_id. since_ts: when the tie began.
FRIENDSHIPS_SCHEMA = {"user_id": pl.String, "friend_id": pl.String, "kind": pl.String, "since_ts": UTC_TS}
# hashtags: space-separated, without '#'; null when none.
POSTS_SCHEMA = {"post_id": pl.String, "author_id": pl.String, "text": pl.String, "topic": pl.String,
                "hashtags": pl.String, "media": pl.String, "created_ts": UTC_TS}
IMPRESSIONS_SCHEMA = {"impression_id": pl.String, "user_id": pl.String, "post_id": pl.String, "ts": UTC_TS,
                      "position": pl.Int64, "device": pl.String}
REACTIONS_SCHEMA = {"impression_id": pl.String, "reaction": pl.String, "ts": UTC_TS}
DWELL_SCHEMA = {"impression_id": pl.String, "seconds": pl.Float64}


def _not_null(*columns: str) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def users_suite() -> Suite:
    return Suite(
        name="news_feed_raw_users",
        dtypes=USERS_SCHEMA,
        id_columns=("user_id",),
        expectations=[
            *_not_null("user_id"),
            gxe.ExpectColumnValuesToBeUnique(column="user_id"),
            # Age, gender and the sign-up date are three features among many: an odd value is worth a look, not a
            # lost user.
            *under(WARN, gxe.ExpectColumnValuesToBeBetween(column="age", min_value=13, max_value=110),
                   gxe.ExpectColumnValuesToNotBeNull(column="joined_ts")),
        ],
    )


def friendships_suite(user_ids: pl.Series) -> Suite:
    return Suite(
        name="news_feed_raw_friendships",
        dtypes=FRIENDSHIPS_SCHEMA,
        id_columns=("user_id", "friend_id"),
        references={"user_id": user_ids, "friend_id": user_ids},
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("user_id", "friend_id"),
            # A tie of an unknown kind, or without a start, cannot be told apart from none: set aside, up to 1%.
            *under(quarantine(0.01), gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=list(TIE_KINDS)),
                   gxe.ExpectColumnValuesToNotBeNull(column="since_ts")),
            # A pair listed twice (both ways, or as friend and family) is one tie: the features keep its strongest
            # kind and earliest start, so duplicates need no expectation.
        ],
    )


def posts_suite(user_ids: pl.Series) -> Suite:
    return Suite(
        name="news_feed_raw_posts",
        dtypes=POSTS_SCHEMA,
        id_columns=("post_id",),
        references={"author_id": user_ids},
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("post_id", "author_id"),
            gxe.ExpectColumnValuesToBeUnique(column="post_id"),
            # A post without a time cannot be retrieved or aged; an unknown media kind is a logging error.
            *under(quarantine(0.01), gxe.ExpectColumnValuesToNotBeNull(column="created_ts"),
                   gxe.ExpectColumnValuesToBeInSet(column="media", value_set=list(MEDIA))),
            # No text only costs the text-similarity feature (0); no topic, the topic affinity.
            *under(WARN, *_not_null("text", "topic")),
        ],
    )


def impressions_suite(user_ids: pl.Series, post_ids: pl.Series) -> Suite:
    return Suite(
        name="news_feed_raw_impressions",
        dtypes=IMPRESSIONS_SCHEMA,
        exact_columns=False,  # validated with the post's created_ts joined on
        id_columns=("impression_id",),
        references={"user_id": user_ids, "post_id": post_ids},
        # Impressions of unknown (or quarantined) users and posts are set aside, up to 1%.
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("impression_id", "user_id", "post_id", "ts"),
            # The same impression twice would count twice in every "so far" feature: the run stops.
            gxe.ExpectColumnValuesToBeUnique(column="impression_id"),
            *under(quarantine(0.01),
                   gxe.ExpectColumnValuesToNotBeNull(column="position"),
                   gxe.ExpectColumnValuesToBeBetween(column="position", min_value=1),
                   # A post shown before it was written: a clock or an id error.
                   gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="ts", column_B="created_ts", or_equal=True,
                                                               ignore_row_if="either_value_is_missing")),
            *under(WARN, gxe.ExpectColumnValuesToNotBeNull(column="device")),
        ],
    )


def reactions_suite(impression_ids: pl.Series) -> Suite:
    return Suite(
        name="news_feed_raw_reactions",
        dtypes=REACTIONS_SCHEMA,
        exact_columns=False,  # validated with the impression's time joined on
        id_columns=("impression_id", "reaction", "ts"),
        references={"impression_id": impression_ids},
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("impression_id", "reaction", "ts"),
            # The same reaction logged twice would count twice in every rate: the run stops.
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["impression_id", "reaction", "ts"]),
            *under(quarantine(0.01),
                   gxe.ExpectColumnValuesToBeInSet(column="reaction", value_set=list(REACTIONS)),
                   # A reaction before its impression: a clock error (it would label the past).
                   gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="ts", column_B="shown_ts", or_equal=True,
                                                               ignore_row_if="either_value_is_missing")),
        ],
    )


def dwell_suite(impression_ids: pl.Series) -> Suite:
    return Suite(
        name="news_feed_raw_dwell",
        dtypes=DWELL_SCHEMA,
        id_columns=("impression_id",),
        references={"impression_id": impression_ids},
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("impression_id"),
            # One dwell per impression: sum the views of an impression before you hand them over.
            gxe.ExpectColumnValuesToBeUnique(column="impression_id"),
            # A negative or day-long view is a logging error: set aside, up to 1%.
            *under(quarantine(0.01), gxe.ExpectColumnValuesToNotBeNull(column="seconds"),
                   gxe.ExpectColumnValuesToBeBetween(column="seconds", min_value=0, max_value=86_400)),
        ],
    )


def split_suite() -> Suite:
    """Train, validation and test windows exist, hold impressions and engagement, and follow each other."""
    return ordered_windows_suite("news_feed_time_split", ("impressions", "engaged"))


def model_inputs_suite() -> Suite:
    """The labels and what only the evaluation may read are never model inputs (a frame of the input names)."""
    return Suite(
        name="news_feed_model_inputs",
        dtypes={"feature": pl.String},
        id_columns=("feature",),
        expectations=[
            gxe.ExpectColumnValuesToBeUnique(column="feature"),
            gxe.ExpectColumnValuesToNotBeInSet(column="feature", value_set=[*LABELS, "split", "session_id", "impression_id",
                                                                             *(f"p_{h}" for h in HEADS)]),
        ],
    )


def point_in_time_suite() -> Suite:
    """One row per growing count (the point-in-time audit): every sampled row equals its recount from the raw tables
    strictly before the impression."""
    return Suite(
        name="news_feed_point_in_time",
        dtypes={},
        exact_columns=False,
        id_columns=("feature",),
        expectations=[gxe.ExpectColumnValuesToBeBetween(column="rows_not_as_of_impression", min_value=0, max_value=0),
                      gxe.ExpectColumnValuesToBeBetween(column="rows_checked", min_value=1)],
    )
