"""Labels, time split and point-in-time features of the video recommender, in polars.

Every function that takes `as_of` reads only interactions strictly before it, so the same code computes
training features (as of a past cutoff) and serving features (as of now) without leakage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from models.windows import WindowSize, trailing_days

HISTORY_LENGTH = 50  # most recent relevant videos a user is represented by
# relevant = liked, or watched at least half without a dislike (the book's objective); a dislike always wins
RELEVANT = (pl.col("liked") == True).fill_null(False) | (  # noqa: E712
    (pl.col("watch_fraction") >= 0.5).fill_null(False) & (pl.col("liked") != False).fill_null(True)  # noqa: E712
)


def label_interactions(interactions: pl.DataFrame) -> pl.DataFrame:
    return interactions.with_columns(relevant=RELEVANT)


@dataclass(frozen=True)
class Cutoffs:
    """Retrieval trains before `retrieval_end`; the ranker learns labels in [retrieval_end, test_start) from features
    as of `retrieval_end`; everything is judged on labels in [test_start, test_end) from features as of `test_start`."""

    start: datetime
    retrieval_end: datetime
    test_start: datetime
    test_end: datetime

    @classmethod
    def from_interactions(
        cls, interactions: pl.DataFrame, ranker: WindowSize | str, test: WindowSize | str,
        settings: tuple[str, str] = ("ranker window", "test window"),
    ) -> Cutoffs:
        """The test window is the fewest whole days at the end that meet `test`, the ranker window the fewest before
        it that meet `ranker`; retrieval trains on the rest, which must hold at least the ranker window's
        interactions. `settings` name the two sizes in errors."""
        ranker = WindowSize.parse(ranker) if isinstance(ranker, str) else ranker
        test = WindowSize.parse(test) if isinstance(test, str) else test
        first, last = interactions["ts"].min(), interactions["ts"].max()
        start = first.replace(hour=0, minute=0, second=0, microsecond=0)
        end = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        total = interactions.height
        test_start = end - timedelta(days=trailing_days(interactions, end, test, total, settings[1]))
        earlier = before(interactions, test_start)
        retrieval_end = test_start - timedelta(days=trailing_days(earlier, test_start, ranker, total, settings[0]))
        ranker_rows = earlier.height - before(earlier, retrieval_end).height
        retrieval_rows = earlier.height - ranker_rows
        if retrieval_end <= start or retrieval_rows < ranker_rows:
            raise ValueError(
                f"{settings[0]}={str(ranker)!r} and {settings[1]}={str(test)!r} leave {retrieval_rows} interactions "
                f"({(retrieval_end - start).days} days) to train retrieval on, fewer than the ranker window's "
                f"{ranker_rows}: too few days of data for these windows, or smaller windows"
            )
        return cls(start, retrieval_end, test_start, end)

    def windows(self) -> pl.DataFrame:
        return pl.DataFrame({
            "window": ["retrieval_train", "ranker_train", "test"],
            "start": [self.start, self.retrieval_end, self.test_start],
            "end": [self.retrieval_end, self.test_start, self.test_end],
        })


def before(frame: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    return frame.filter(pl.col("ts") < as_of)


def between(frame: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    return frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))


def catalogue(videos: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Videos that exist at `as_of` (an unknown upload time counts as existing)."""
    return videos.filter(pl.col("upload_ts").is_null() | (pl.col("upload_ts") < as_of))


def video_stats(labeled: pl.DataFrame, videos: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Per video in the catalogue at `as_of`: popularity, trend, relevance rate, age, content."""
    recent = labeled.filter((pl.col("ts") < as_of) & (pl.col("ts") >= as_of - timedelta(days=7)))
    day_ago = as_of - timedelta(days=1)
    counts = recent.group_by("video_id").agg(
        views_7d=pl.len(),
        views_1d=(pl.col("ts") >= day_ago).sum(),
        relevant_7d=pl.col("relevant").sum(),
    )
    with_channel = "channel_id" in videos.columns
    return (
        catalogue(videos, as_of)
        .select(
            "video_id",
            "title",
            "tags",
            "language",
            "channel_id" if with_channel else pl.lit(None, pl.String).alias("channel_id"),
            age_days=((pl.lit(as_of) - pl.col("upload_ts")).dt.total_seconds() / 86_400),
            log_duration=pl.col("duration_s").clip(1.0).log(),
        )
        .join(counts, on="video_id", how="left")
        .with_columns(pl.col("views_7d", "views_1d", "relevant_7d").fill_null(0).cast(pl.Float64))
        .with_columns(
            relevance_rate=(pl.col("relevant_7d") + 1) / (pl.col("views_7d") + 2),
            trending=pl.col("views_1d") * 7 / (pl.col("views_7d") + 7),
        )
        .sort("video_id")
    )


def user_profiles(labeled: pl.DataFrame, users: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Per user: demographics, history (recent relevant videos, oldest first), everything seen, watch statistics."""
    past = before(labeled, as_of).sort("ts")
    profiles = past.group_by("user_id").agg(
        history=pl.col("video_id").filter(pl.col("relevant")).tail(HISTORY_LENGTH),
        seen=pl.col("video_id").unique(),
        n_views=pl.len().cast(pl.Float64),
        mean_watch=pl.col("watch_fraction").mean(),
        like_rate=(pl.col("liked") == True).sum() / pl.len(),  # noqa: E712
        relevant_rate=pl.col("relevant").mean(),
        last_ts=pl.col("ts").max(),
    )
    return (
        users.select("user_id", "age", "gender", "country")
        .join(profiles, on="user_id", how="full", coalesce=True)
        .with_columns(
            pl.col("history", "seen").fill_null(pl.lit([], pl.List(pl.String))),
            pl.col("n_views").fill_null(0.0),
        )
        .sort("user_id")
    )


def ground_truth(labeled: pl.DataFrame, videos: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Per user, the relevant videos of [start, end) that were in the catalogue at `start` and not seen before it."""
    existing = catalogue(videos, start).select("video_id")
    seen = before(labeled, start).select("user_id", "video_id").unique()
    return (
        between(labeled, start, end)
        .filter(pl.col("relevant"))
        .join(existing, on="video_id", how="semi")
        .join(seen, on=["user_id", "video_id"], how="anti")
        .group_by("user_id")
        .agg(relevant=pl.col("video_id").unique())
        .sort("user_id")
    )


def popular_videos(stats: pl.DataFrame, n: int, by: str = "views_7d") -> list[str]:
    return stats.sort([by, "relevance_rate", "video_id"], descending=[True, True, False]).head(n)["video_id"].to_list()


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


def leakage_audit(cutoffs: Cutoffs, labeled: pl.DataFrame, ranker_data: pl.DataFrame) -> pl.DataFrame:
    """One row per training input: the last time it reads, and the time it must end before."""
    retrieval = labeled.filter(pl.col("window") == "retrieval_train")
    ranker_labels = labeled.filter(pl.col("window") == "ranker_train")
    ts = pl.Datetime("us", "UTC")
    return pl.DataFrame(
        {
            "input": ["two-tower training views", "ranker features", "ranker labels"],
            "last_ts": [retrieval["ts"].max(), ranker_data["features_as_of"].max(), ranker_labels["ts"].max()],
            "must_end_before": [cutoffs.retrieval_end, ranker_data["labels_from"].min(), cutoffs.test_start],
        },
        schema={"input": pl.String, "last_ts": ts, "must_end_before": ts},
    ).with_columns(
        # features as of a time read only what is strictly before it, so "as of" may equal the labels' start
        last_ts=pl.when(pl.col("input") == "ranker features").then(pl.col("last_ts") - pl.duration(microseconds=1))
        .otherwise(pl.col("last_ts"))
    )
