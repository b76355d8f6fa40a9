"""The search log and the catalogue as the models read them: the time split, the catalogue as of a time (what the
index holds), and the judged queries (a query with a click, judged by the rank of the clicked video)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from models.video_search.text import document
from models.windows import WindowSize, held_out_cutoffs


@dataclass(frozen=True)
class Cutoffs:
    """Models learn from the clicks of queries before `validation_start`, choose epochs and fusion weights on the
    validation window [validation_start, test_start) and are judged on the queries of [test_start, end)."""

    start: datetime
    validation_start: datetime
    test_start: datetime
    end: datetime

    @classmethod
    def from_log(cls, queries: pl.DataFrame, clicks: pl.DataFrame, validation: WindowSize | str, test: WindowSize | str,
                 settings: tuple[str, str] = ("validation window", "test window")) -> Cutoffs:
        """The test window is the fewest whole days at the end whose clicked queries meet `test` ("users" count
        clicked queries: the contract has no searcher), the validation window the fewest before it meeting
        `validation`; the days before must hold at least as many clicked queries as the validation window."""
        clicked = clicked_queries(queries, clicks)
        if clicked.is_empty():
            raise ValueError("no query has a click: the book's metric (the clicked video's rank) needs some")
        start, validation_start, test_start, end = held_out_cutoffs(queries, clicked, validation, test, settings,
                                                                    users="query_id")
        train = clicked.filter(pl.col("ts") < validation_start).height
        held = clicked.filter((pl.col("ts") >= validation_start) & (pl.col("ts") < test_start)).height
        if validation_start <= start or train < held:
            raise ValueError(
                f"{settings[0]}={str(validation)!r} and {settings[1]}={str(test)!r} leave {train} clicked queries "
                f"({(validation_start - start).days} days) to train on, fewer than the validation window's {held}: "
                "too few days of data for these windows, or set smaller windows")
        return cls(start, validation_start, test_start, end)

    def windows(self, queries: pl.DataFrame, clicks: pl.DataFrame) -> pl.DataFrame:
        """One row per window (start, end, queries, clicked queries, last query, next window's start)."""
        clicked = clicked_queries(queries, clicks)
        bounds = [("train", self.start, self.validation_start), ("validation", self.validation_start, self.test_start),
                  ("test", self.test_start, self.end)]
        rows = []
        for i, (name, lo, hi) in enumerate(bounds):
            part = queries.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
            rows.append({"window": name, "start": lo, "end": hi, "queries": part.height,
                         "clicked_queries": clicked.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi)).height,
                         "first_ts": part["ts"].min(), "last_ts": part["ts"].max(),
                         "next_start": bounds[i + 1][1] if i + 1 < len(bounds) else None})
        return pl.DataFrame(rows)


def clicked_queries(queries: pl.DataFrame, clicks: pl.DataFrame) -> pl.DataFrame:
    """query_id, text, ts and the clicked video ids (every click of the query: any of them is relevant)."""
    clicked = clicks.group_by("query_id").agg(pl.col("video_id").unique().sort().alias("clicked"))
    return queries.join(clicked, on="query_id", how="inner").sort("ts", "query_id")


def mean_frames(frames: pl.DataFrame, video_ids: pl.Series) -> np.ndarray:
    """Each video's frames averaged (the book's video encoder: cheap, no motion), in the order of `video_ids`; zeros
    for a video without frames."""
    if frames.is_empty():
        return np.zeros((len(video_ids), 1), dtype=np.float32)
    dim = int(frames["vector"].list.len().max())
    frames = frames.filter(pl.col("vector").list.len() == dim)
    rows = frames.select("video_id").join(pl.DataFrame({"video_id": video_ids, "row": np.arange(len(video_ids))}),
                                          on="video_id", how="left", maintain_order="left")["row"]
    known = rows.is_not_null().to_numpy()
    vectors = frames["vector"].list.to_array(dim).to_numpy()[known].astype(np.float32)
    index = rows.to_numpy()[known].astype(np.int64)
    sums = np.zeros((len(video_ids), dim), dtype=np.float64)
    np.add.at(sums, index, vectors)
    counts = np.bincount(index, minlength=len(video_ids))
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


@dataclass
class Catalogue:
    """Every video the index holds, in upload order: ids, upload times (seconds), the text the index reads, whether
    it has tags, its mean frame and its metadata's sentence embedding."""

    ids: np.ndarray
    upload_seconds: np.ndarray
    titles: list[str]
    descriptions: list[str | None]
    tags: list[str | None]
    tagged: np.ndarray
    frames: np.ndarray
    metadata_vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def metadata_text(videos: pl.DataFrame) -> list[str]:
        """What the frozen text encoder reads of a video: title and description."""
        return [". ".join(p for p in (t, d) if p) for t, d in zip(videos["title"].to_list(), videos["description"].to_list())]

    def documents(self, auto_tags: list[str | None] | None = None) -> list[str]:
        """What the text index reads of each video; `auto_tags` (one per video) fill in where a video has no tags."""
        auto_tags = auto_tags or [None] * len(self)
        return [document(t, d, g, None if has else a)
                for t, d, g, has, a in zip(self.titles, self.descriptions, self.tags, self.tagged, auto_tags)]

    @classmethod
    def build(cls, videos: pl.DataFrame, frames: pl.DataFrame, embed, as_of: datetime | None = None) -> Catalogue:
        """The videos uploaded before `as_of` (all when None); `embed` maps texts to sentence vectors."""
        if as_of is not None:
            videos = videos.filter(pl.col("upload_ts") < as_of)
        videos = videos.sort("upload_ts", "video_id")
        tags = videos["tags"].to_list()
        return cls(
            ids=np.asarray(videos["video_id"].to_list(), dtype=object),
            upload_seconds=np.asarray([t.timestamp() for t in videos["upload_ts"].to_list()]),
            titles=[t or "" for t in videos["title"].to_list()],
            descriptions=videos["description"].to_list(),
            tags=tags,
            tagged=np.asarray([bool(g and g.strip()) for g in tags], dtype=bool),
            frames=mean_frames(frames, videos["video_id"]),
            metadata_vectors=embed(cls.metadata_text(videos)),
        )

    def positions(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.ids.tolist())}


@dataclass
class JudgedQueries:
    """Queries with a click, in time order: text, time, the positions of the clicked videos in the catalogue."""

    ids: list[str]
    texts: list[str]
    seconds: np.ndarray
    relevant: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)


def judged_queries(queries: pl.DataFrame, clicks: pl.DataFrame, positions: dict[str, int], start: datetime | None,
                   end: datetime | None) -> JudgedQueries:
    """The clicked queries of [start, end) whose clicked videos an index holds (`positions`: video id to its row; a
    click on a video uploaded after the index was built cannot be judged)."""
    rows = clicked_queries(queries, clicks)
    if start is not None:
        rows = rows.filter(pl.col("ts") >= start)
    if end is not None:
        rows = rows.filter(pl.col("ts") < end)
    ids, texts, seconds, relevant = [], [], [], []
    for query_id, text, ts, clicked in rows.select("query_id", "text", "ts", "clicked").iter_rows():
        found = np.asarray([positions[v] for v in clicked if v in positions], dtype=np.int64)
        if len(found):
            ids.append(query_id)
            texts.append(text or "")
            seconds.append(ts.timestamp())
            relevant.append(found)
    return JudgedQueries(ids, texts, np.asarray(seconds), relevant)


def leakage_audit(last_training_query: datetime | None, last_tagger_upload: datetime | None,
                  last_counted_click: datetime | None, validation_start: datetime, test_start: datetime) -> pl.DataFrame:
    """One row per training input and the window it must end before (expectations.windows.ends_before_suite)."""
    return pl.DataFrame([
        {"input": "dual encoder's training queries", "last_ts": last_training_query, "must_end_before": validation_start},
        {"input": "auto-tagger's training videos", "last_ts": last_tagger_upload, "must_end_before": validation_start},
        {"input": "popularity's counted clicks", "last_ts": last_counted_click, "must_end_before": test_start},
    ], schema={"input": pl.String, "last_ts": pl.Datetime("us", "UTC"), "must_end_before": pl.Datetime("us", "UTC")})


def with_click_times(clicks: pl.DataFrame, queries: pl.DataFrame) -> pl.DataFrame:
    """Clicks with a `ts`: their own, or (the column is optional, a value may be missing) their query's."""
    query_ts = queries.select("query_id", query_ts="ts")
    if "ts" not in clicks.columns:
        return clicks.join(query_ts, on="query_id", how="left", maintain_order="left").rename({"query_ts": "ts"})
    return (clicks.join(query_ts, on="query_id", how="left", maintain_order="left")
            .with_columns(ts=pl.col("ts").fill_null(pl.col("query_ts"))).drop("query_ts"))
