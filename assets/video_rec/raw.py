"""Raw video platform data (users, videos, interactions) as the source gives it, and the time-split labels."""

import dagster as dg
import polars as pl

from assets.common import frame_markdown, frame_metadata, suite_check
from assets.raw import build_raw_table
from assets.video_rec.resources import VideoRecTimeSplit
from expectations import video_rec as suites
from models.video_rec.features import label_interactions, split_windows

GROUP = "video_rec"


def _interactions_summary(interactions: pl.DataFrame) -> dict:
    if not {"ts", "user_id", "video_id"} <= set(interactions.columns):
        return {}
    return {"first_ts": str(interactions["ts"].min()), "last_ts": str(interactions["ts"].max()),
            "users": interactions["user_id"].n_unique(), "videos": interactions["video_id"].n_unique()}


def _interactions_suite(frame: pl.DataFrame, window, users: pl.DataFrame, videos: pl.DataFrame):
    suite = suites.interactions_suite(users["user_id"], videos["video_id"])
    if "video_id" in frame.columns and "upload_ts" in videos.columns:
        frame = frame.join(videos.select("video_id", "upload_ts"), on="video_id", how="left", maintain_order="left")
    return frame, suite


def build_raw_assets() -> list:
    raw = [
        *build_raw_table(GROUP, "users", suites.USERS_SCHEMA, "People who get a homepage: demographics (the cold-start signal).",
                         lambda frame, window: (frame, suites.users_suite()), "Schema, unique non-null ids, age range."),
        *build_raw_table(GROUP, "videos", suites.VIDEOS_SCHEMA,
                         "The catalogue: title, tags, duration, language, upload time (and channel when the source has it).",
                         lambda frame, window: (frame, suites.videos_suite()),
                         "Schema, unique non-null ids and titles, duration range."),
        *build_raw_table(GROUP, "interactions", suites.INTERACTIONS_SCHEMA,
                         "Every view: how much was watched, and a like or dislike when the user gave one.",
                         _interactions_suite,
                         "Schema, watch fraction in [0,1], known users and videos, no view before its video's upload.",
                         references={"users": "video_rec_users", "videos": "video_rec_videos"},
                         summary=_interactions_summary),
    ]

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"})
    def video_rec_labeled_interactions(
        context: dg.AssetExecutionContext, video_rec_time_split: VideoRecTimeSplit, video_rec_interactions: pl.DataFrame
    ) -> dg.MaterializeResult:
        """Views labelled relevant (liked, or watched at least half without a dislike: the book's objective) and
        assigned to the retrieval-training, ranker-training or test window by time."""
        labeled = label_interactions(video_rec_interactions).sort("ts")
        cutoffs = video_rec_time_split.cutoffs(labeled)
        labeled = labeled.with_columns(
            window=pl.when(pl.col("ts") < cutoffs.retrieval_end).then(pl.lit("retrieval_train"))
            .when(pl.col("ts") < cutoffs.test_start).then(pl.lit("ranker_train"))
            .otherwise(pl.lit("test"))
        )
        windows = split_windows(labeled, cutoffs)
        context.log.info(f"time split:\n{windows}")
        return dg.MaterializeResult(
            value=labeled,
            metadata={
                **frame_metadata(labeled),
                "relevant_share": float(labeled["relevant"].mean()),
                "windows": dg.MetadataValue.md(frame_markdown(windows.drop("next_start"))),
                "retrieval_end": cutoffs.retrieval_end.isoformat(),
                "test_start": cutoffs.test_start.isoformat(),
            },
        )

    @dg.asset_check(
        asset=video_rec_labeled_interactions, blocking=True,
        description="Retrieval, ranker and test windows hold data, are disjoint and in time order.",
    )
    def video_rec_time_split_valid(video_rec_time_split: VideoRecTimeSplit, video_rec_labeled_interactions: pl.DataFrame) -> dg.AssetCheckResult:
        windows = split_windows(video_rec_labeled_interactions, video_rec_time_split.cutoffs(video_rec_labeled_interactions))
        return suite_check(windows, suites.split_suite())

    return [*raw, video_rec_labeled_interactions, video_rec_time_split_valid]
