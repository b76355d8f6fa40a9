"""Raw search data (videos, their frames, queries, clicks) as the source gives it, validated, and the time split every
approach shares."""

import dagster as dg
import polars as pl

from assets.common import frame_markdown, suite_check
from assets.raw import build_raw_table
from assets.video_search.resources import VideoSearchTimeSplit
from expectations import video_search as suites

GROUP = "video_search"


def _videos_summary(videos: pl.DataFrame) -> dict:
    if not {"tags", "upload_ts"} <= set(videos.columns) or videos.is_empty():
        return {}
    return {"untagged_videos": int(videos["tags"].is_null().sum()), "first_upload": str(videos["upload_ts"].min()),
            "last_upload": str(videos["upload_ts"].max())}


def _queries_summary(queries: pl.DataFrame) -> dict:
    if "ts" not in queries.columns or queries.is_empty():
        return {}
    return {"first_ts": str(queries["ts"].min()), "last_ts": str(queries["ts"].max())}


def _frames_suite(frame: pl.DataFrame, window, videos: pl.DataFrame):
    lengths = frame["vector"].list.len() if "vector" in frame.columns and frame["vector"].dtype == pl.List(pl.Float32) else None
    dim = int(lengths.drop_nulls().mode().min()) if lengths is not None and lengths.drop_nulls().len() else 0
    if lengths is not None:
        frame = frame.with_columns(length=lengths, finite=pl.col("vector").list.eval(pl.element().is_finite()).list.all())
    return frame, suites.frames_suite(videos["video_id"], dim)


def _queries_suite(frame: pl.DataFrame, window):
    if "text" in frame.columns and frame["text"].dtype == pl.String:
        frame = frame.with_columns(chars=pl.col("text").str.strip_chars().str.len_chars())
    return frame, suites.queries_suite()


def _clicks_suite(frame: pl.DataFrame, window, queries: pl.DataFrame, videos: pl.DataFrame):
    suite = suites.clicks_suite(queries["query_id"], videos["video_id"], has_ts="ts" in frame.columns)
    if "query_id" in frame.columns and "video_id" in frame.columns:
        frame = (frame.join(queries.select("query_id", query_ts="ts"), on="query_id", how="left", maintain_order="left")
                 .join(videos.select("video_id", "upload_ts"), on="video_id", how="left", maintain_order="left"))
    return frame, suite


def build_raw_assets() -> list:
    videos = {"videos": "video_search_videos"}
    raw = [
        *build_raw_table(GROUP, "videos", suites.VIDEOS_SCHEMA,
                         "Every video: title, description, tags as uploaded (any may be missing) and upload time.",
                         lambda frame, window: (frame, suites.videos_suite()),
                         "Schema, unique non-null ids, an upload time.", summary=_videos_summary),
        *build_raw_table(GROUP, "frames", suites.FRAMES_SCHEMA,
                         "Sampled frames of each video as vectors from an image encoder.", _frames_suite,
                         "Schema, known videos, one vector length, one row per frame.", references=videos),
        *build_raw_table(GROUP, "queries", suites.QUERIES_SCHEMA, "The search log: what was typed, and when.",
                         _queries_suite, "Schema, unique ids, text of 1 to 200 characters.", summary=_queries_summary),
        *build_raw_table(GROUP, "clicks", suites.CLICKS_SCHEMA,
                         "Which video each query's searcher clicked, at which position of the results.", _clicks_suite,
                         "Schema, known queries and videos, no click before its query or on a video uploaded after it.",
                         references={"queries": "video_search_queries", **videos}),
    ]

    @dg.asset(group_name=GROUP, kinds={"polars"},
              ins={"queries": dg.AssetIn("video_search_queries"), "clicks": dg.AssetIn("video_search_clicks")})
    def video_search_windows(
        context: dg.AssetExecutionContext, video_search_time_split: VideoSearchTimeSplit, queries: pl.DataFrame,
        clicks: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Where training ends and judging begins: the train, validation and test windows every approach shares,
        sized by the data (the test window holds enough clicked queries)."""
        try:
            cutoffs = video_search_time_split.cutoffs(queries, clicks)
        except ValueError as error:
            raise dg.Failure(str(error)) from None
        windows = cutoffs.windows(queries, clicks)
        context.log.info(f"time split:\n{windows}")
        return dg.MaterializeResult(
            value=windows,
            metadata={"windows": dg.MetadataValue.md(frame_markdown(windows.drop("next_start"))),
                      "validation_start": cutoffs.validation_start.isoformat(),
                      "test_start": cutoffs.test_start.isoformat(), "end": cutoffs.end.isoformat()},
        )

    @dg.asset_check(asset=video_search_windows, blocking=True,
                    description="Train, validation and test windows hold clicked queries, are disjoint and in time order.")
    def video_search_windows_valid(video_search_windows: pl.DataFrame) -> dg.AssetCheckResult:
        return suite_check(video_search_windows, suites.split_suite())

    return [*raw, video_search_windows, video_search_windows_valid]
