"""Raw video platform data (users, videos, interactions) as the source gives it, and the time-split labels."""

import dagster as dg
import polars as pl

from assets.common import frame_markdown, frame_metadata, suite_check
from expectations import video_rec as suites
from models.video_rec.features import Cutoffs, label_interactions
from orchestration.resources import VideoRecSource

GROUP = "video_recommendation"


class VideoRecTimeSplit(dg.ConfigurableResource):
    """The last `test_days` are the test window; the `ranker_days` before them teach the ranker."""

    ranker_days: int = 4
    test_days: int = 4

    def cutoffs(self, interactions: pl.DataFrame) -> Cutoffs:
        return Cutoffs.from_interactions(interactions, self.ranker_days, self.test_days)


def split_windows(labeled: pl.DataFrame, cutoffs: Cutoffs) -> pl.DataFrame:
    """One row per window, in time order, with its interactions and the next window's start."""
    windows = cutoffs.windows().with_columns(next_start=pl.col("start").shift(-1))
    counts = [
        labeled.filter((pl.col("ts") >= s) & (pl.col("ts") < e)).select(n=pl.len(), last=pl.col("ts").max())
        for s, e in zip(windows["start"], windows["end"])
    ]
    return windows.with_columns(
        interactions=pl.Series([c["n"][0] for c in counts], dtype=pl.Int64),
        last_ts=pl.Series([c["last"][0] for c in counts], dtype=pl.Datetime("us", "UTC")),
    )


def build_raw_assets() -> list:
    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"})
    def video_rec_users(video_source: VideoRecSource) -> dg.MaterializeResult:
        """People who get a homepage: demographics (the cold-start signal)."""
        users = video_source.table("users", suites.USERS_SCHEMA)
        return dg.MaterializeResult(value=users, metadata={**frame_metadata(users), "source": video_source.description})

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"})
    def video_rec_videos(video_source: VideoRecSource) -> dg.MaterializeResult:
        """The catalogue: title, tags, duration, language, upload time (and channel when the source has it)."""
        videos = video_source.table("videos", suites.VIDEOS_SCHEMA)
        return dg.MaterializeResult(value=videos, metadata={**frame_metadata(videos), "source": video_source.description})

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"})
    def video_rec_interactions(video_source: VideoRecSource) -> dg.MaterializeResult:
        """Every view: how much was watched, and a like or dislike when the user gave one."""
        interactions = video_source.table("interactions", suites.INTERACTIONS_SCHEMA)
        metadata = {**frame_metadata(interactions), "source": video_source.description}
        if {"ts", "user_id", "video_id"} <= set(interactions.columns) and interactions.height:
            metadata.update(
                first_ts=str(interactions["ts"].min()), last_ts=str(interactions["ts"].max()),
                users=interactions["user_id"].n_unique(), videos=interactions["video_id"].n_unique(),
            )
        return dg.MaterializeResult(value=interactions, metadata=metadata)

    @dg.asset_check(asset=video_rec_users, blocking=True, description="Schema, unique non-null ids, age range.")
    def video_rec_users_valid(video_rec_users: pl.DataFrame) -> dg.AssetCheckResult:
        return suite_check(video_rec_users, suites.users_suite())

    @dg.asset_check(asset=video_rec_videos, blocking=True, description="Schema, unique non-null ids and titles, duration range.")
    def video_rec_videos_valid(video_rec_videos: pl.DataFrame) -> dg.AssetCheckResult:
        return suite_check(video_rec_videos, suites.videos_suite())

    @dg.asset_check(
        asset=video_rec_interactions,
        blocking=True,
        additional_ins={"users": dg.AssetIn("video_rec_users"), "videos": dg.AssetIn("video_rec_videos")},
        description="Schema, watch fraction in [0,1], known users and videos, no view before its video's upload.",
    )
    def video_rec_interactions_valid(
        video_rec_interactions: pl.DataFrame, users: pl.DataFrame, videos: pl.DataFrame
    ) -> dg.AssetCheckResult:
        suite = suites.interactions_suite(users["user_id"].unique().to_list(), videos["video_id"].unique().to_list())
        frame = video_rec_interactions
        if "video_id" in frame.columns and "upload_ts" in videos.columns:
            frame = frame.join(videos.select("video_id", "upload_ts"), on="video_id", how="left")
        return suite_check(frame, suite)

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"})
    def video_rec_labeled_interactions(
        context: dg.AssetExecutionContext, video_time_split: VideoRecTimeSplit, video_rec_interactions: pl.DataFrame
    ) -> dg.MaterializeResult:
        """Views labelled relevant (liked, or watched at least half without a dislike: the book's objective) and
        assigned to the retrieval-training, ranker-training or test window by time."""
        labeled = label_interactions(video_rec_interactions).sort("ts")
        cutoffs = video_time_split.cutoffs(labeled)
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
    def video_rec_time_split_valid(video_time_split: VideoRecTimeSplit, video_rec_labeled_interactions: pl.DataFrame) -> dg.AssetCheckResult:
        windows = split_windows(video_rec_labeled_interactions, video_time_split.cutoffs(video_rec_labeled_interactions))
        return suite_check(windows, suites.split_suite())

    return [
        video_rec_users, video_rec_videos, video_rec_interactions, video_rec_labeled_interactions,
        video_rec_users_valid, video_rec_videos_valid, video_rec_interactions_valid, video_rec_time_split_valid,
    ]
