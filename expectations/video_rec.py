"""Expectation suites of the video recommender: the raw-input contract, the time split and leakage."""

from __future__ import annotations

import great_expectations.expectations as gxe
import polars as pl

from expectations.custom import ExpectNoColumnToCorrelateWithLabel
from expectations.runner import WARN, Suite, quarantine, under
from expectations.windows import ends_before_suite, ordered_windows_suite
from models.video_rec.recommender import RANKER_FEATURES

UTC_TS = pl.Datetime("us", "UTC")
# The raw-input contract (README "Video recommendation: bring your own data"). Nullable where marked there.
INTERACTIONS_SCHEMA = {
    "user_id": pl.String, "video_id": pl.String, "ts": UTC_TS, "watch_fraction": pl.Float64, "liked": pl.Boolean,
}
VIDEOS_SCHEMA = {
    "video_id": pl.String, "title": pl.String, "tags": pl.List(pl.String), "duration_s": pl.Float64,
    "language": pl.String, "upload_ts": UTC_TS,
    "channel_id": pl.String,  # optional: when your files lack it, it is null and the per-channel rule is off
}
USERS_SCHEMA = {"user_id": pl.String, "age": pl.Int64, "gender": pl.String, "country": pl.String}
LABEL_CORRELATION_LIMIT = 0.5


def _not_null(*columns: str) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def users_suite() -> Suite:
    return Suite(
        name="video_rec_raw_users",
        dtypes=USERS_SCHEMA,
        id_columns=("user_id",),
        expectations=[
            *_not_null("user_id"),
            gxe.ExpectColumnValuesToBeUnique(column="user_id"),
            # A mistyped age is a poor feature, not a reason to drop the user's every view.
            *under(WARN, gxe.ExpectColumnValuesToBeBetween(column="age", min_value=5, max_value=120)),
        ],
    )


def videos_suite() -> Suite:
    return Suite(
        name="video_rec_raw_videos",
        dtypes=VIDEOS_SCHEMA,
        id_columns=("video_id",),
        expectations=[
            *_not_null("video_id"),
            gxe.ExpectColumnValuesToBeUnique(column="video_id"),
            # A catalogue entry without title or tags, or with an impossible duration, is set aside with its views.
            *under(quarantine(0.01), *_not_null("title", "tags"),
                   gxe.ExpectColumnValuesToBeBetween(column="duration_s", min_value=0, strict_min=True, max_value=86_400)),
        ],
    )


def interactions_suite(user_ids: pl.Series, video_ids: pl.Series) -> Suite:
    return Suite(
        name="video_rec_raw_interactions",
        dtypes=INTERACTIONS_SCHEMA,
        exact_columns=False,  # validated with the video's upload_ts joined on
        id_columns=("user_id", "video_id", "ts"),
        references={"user_id": user_ids, "video_id": video_ids},
        # Views of unknown users or videos (a quarantined video's too) are set aside, up to 1% of the views.
        reference_policy=quarantine(0.01),
        expectations=[
            *_not_null("user_id", "video_id", "ts"),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["user_id", "video_id", "ts"]),
            *under(quarantine(0.01),
                   gxe.ExpectColumnValuesToBeBetween(column="watch_fraction", min_value=0, max_value=1),
                   # A view dated before its video's upload: coarse release dates in real catalogues.
                   gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                       column_A="ts", column_B="upload_ts", or_equal=True, ignore_row_if="either_value_is_missing")),
        ],
    )


def split_suite() -> Suite:
    """Retrieval, ranker and test windows exist, hold interactions, and follow each other without overlap."""
    return ordered_windows_suite("video_rec_time_split", ("interactions",))


def leakage_audit_suite() -> Suite:
    """Each training input ends before the window it must not see (one row per input, see leakage_audit)."""
    return ends_before_suite("video_rec_leakage")


def ranker_data_suite() -> Suite:
    """Ranker rows: features present, labels 0/1, no feature that is a proxy of the label."""
    return Suite(
        name="video_rec_ranker_data",
        dtypes={},
        exact_columns=False,
        id_columns=("user_id", "video_id"),
        expectations=[
            *_not_null("user_id", "video_id", "label", "tt_score", "tt_rank"),
            gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1]),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["user_id", "video_id"]),
            ExpectNoColumnToCorrelateWithLabel(label_column="label", max_abs_correlation=LABEL_CORRELATION_LIMIT),
        ],
    )


def ranker_frame_for_suite(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select("user_id", "video_id", "label", *RANKER_FEATURES)
