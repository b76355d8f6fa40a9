"""Expectation suites of video search: the raw-input contract, the time split and leakage."""

from __future__ import annotations

import great_expectations.expectations as gxe
import polars as pl

from expectations.runner import WARN, Suite, quarantine, under
from expectations.windows import ends_before_suite, ordered_windows_suite

UTC_TS = pl.Datetime("us", "UTC")
# The raw-input contract (README "Video search: bring your own data").
# tags: comma-separated, null when none; title, description: free text in any language and case.
VIDEOS_SCHEMA = {"video_id": pl.String, "title": pl.String, "description": pl.String, "tags": pl.String,
                 "upload_ts": UTC_TS}
# One row per sampled frame: the frame's vector from an image encoder (every vector of one length).
FRAMES_SCHEMA = {"video_id": pl.String, "frame_index": pl.Int64, "vector": pl.List(pl.Float32)}
QUERIES_SCHEMA = {"query_id": pl.String, "text": pl.String, "ts": UTC_TS}
# position: where the clicked video was shown, from 1; ts (optional: the query's time when missing): when it was clicked.
CLICKS_SCHEMA = {"query_id": pl.String, "video_id": pl.String, "position": pl.Int64, "ts": UTC_TS}
OPTIONAL = {"clicks": ("ts",)}
MAX_QUERY_CHARS = 200


def _not_null(*columns: str) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def videos_suite() -> Suite:
    return Suite(
        name="video_search_raw_videos",
        dtypes=VIDEOS_SCHEMA,
        id_columns=("video_id",),
        expectations=[
            *_not_null("video_id"),
            gxe.ExpectColumnValuesToBeUnique(column="video_id"),
            # A video without an upload time cannot be placed before or after a query: set aside, up to 1%.
            *under(quarantine(0.01), gxe.ExpectColumnValuesToNotBeNull(column="upload_ts")),
            # No title is poor metadata, which the frames and the auto-tagger make up for: worth a look, not a loss.
            *under(WARN, gxe.ExpectColumnValuesToNotBeNull(column="title")),
        ],
    )


def frames_suite(video_ids: pl.Series, dim: int) -> Suite:
    """`dim`: the most common vector length, which every vector must have (the frame's `length` and whether every
    value is `finite` are computed columns)."""
    return Suite(
        name="video_search_raw_frames",
        dtypes=FRAMES_SCHEMA,
        exact_columns=False,
        id_columns=("video_id", "frame_index"),
        references={"video_id": video_ids},
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("video_id", "frame_index"),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["video_id", "frame_index"]),
            # A frame of another length came from another encoder (or lost values), a NaN or infinity would poison
            # the mean frame and every score made from it: set aside, up to 1%.
            *under(quarantine(0.01), gxe.ExpectColumnValuesToNotBeNull(column="vector"),
                   gxe.ExpectColumnValuesToBeBetween(column="length", min_value=dim, max_value=dim),
                   gxe.ExpectColumnValuesToBeInSet(column="finite", value_set=[True]),
                   gxe.ExpectColumnValuesToBeBetween(column="frame_index", min_value=0)),
        ],
    )


def queries_suite() -> Suite:
    return Suite(
        name="video_search_raw_queries",
        dtypes=QUERIES_SCHEMA,
        exact_columns=False,
        id_columns=("query_id",),
        expectations=[
            *_not_null("query_id", "ts"),
            gxe.ExpectColumnValuesToBeUnique(column="query_id"),
            # An empty or pasted-essay query is not a search: set aside, up to 2%.
            *under(quarantine(0.02), gxe.ExpectColumnValuesToNotBeNull(column="text"),
                   gxe.ExpectColumnValuesToBeBetween(column="chars", min_value=1, max_value=MAX_QUERY_CHARS)),
        ],
    )


def clicks_suite(query_ids: pl.Series, video_ids: pl.Series, has_ts: bool = True) -> Suite:
    return Suite(
        name="video_search_raw_clicks",
        dtypes=CLICKS_SCHEMA if has_ts else {k: v for k, v in CLICKS_SCHEMA.items() if k != "ts"},
        exact_columns=False,  # validated with the query's time and the video's upload time joined on
        id_columns=("query_id", "video_id"),
        references={"query_id": query_ids, "video_id": video_ids},
        # Clicks of unknown (or quarantined) queries or videos are set aside, up to 1%.
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("query_id", "video_id"),
            # The same click twice would count twice in popularity: the run stops.
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["query_id", "video_id"]),
            *under(quarantine(0.01),
                   gxe.ExpectColumnValuesToBeBetween(column="position", min_value=1),
                   # A click before its query, or on a video uploaded after it: a clock or id error.
                   *([gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="ts", column_B="query_ts", or_equal=True,
                                                                  ignore_row_if="either_value_is_missing")]
                     if has_ts else []),
                   gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="query_ts", column_B="upload_ts", or_equal=True,
                                                               ignore_row_if="either_value_is_missing")),
            *under(WARN, gxe.ExpectColumnValuesToNotBeNull(column="position")),
        ],
    )


def split_suite() -> Suite:
    """Train, validation and test windows exist, hold clicked queries, and follow each other."""
    return ordered_windows_suite("video_search_time_split", ("queries", "clicked_queries"))


def leakage_suite() -> Suite:
    """The encoder's and the tagger's training data end before the validation window, popularity before the test."""
    return ends_before_suite("video_search_no_leakage")
