"""Impressions as the models read them: one label per head, the feed sessions, and the time split.

A reaction labels its impression when it comes within the label window after it (an impression's labels are known
that long after it, so training rows end that long before the window they are judged against). Dwell is the
impression's seconds on screen (no dwell row: 0, not viewed); a skip is dwell under the skip threshold. A feed
session is a user's impressions with no gap over `SESSION_GAP` between them: the unit the feed is judged on.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from models.windows import LabelDelayCutoffs, WindowSize

REACTIONS = ("click", "like", "comment", "share", "hide", "block")
HEADS = (*REACTIONS, "skip")  # the binary heads
DWELL = "dwell"  # the regression head: seconds on screen, capped at DWELL_CAP
DWELL_CAP = 60.0
EXPLICIT = ("like", "comment", "share")  # what a passive user rarely gives
POSITIVE = ("click", "like", "comment", "share")
SESSION_GAP = timedelta(minutes=30)
# What only the evaluation reads, never a model: the labels, their times and the session.
LABELS = (*HEADS, DWELL, "dwell_seconds", "dwell_missing", "engaged")


def labelled_impressions(impressions: pl.DataFrame, reactions: pl.DataFrame, dwell: pl.DataFrame,
                         label_window: timedelta, skip_seconds: float) -> pl.DataFrame:
    """Every impression (impression_id, user_id, post_id, ts, position, device) with its heads (0/1), its dwell (capped
    seconds), whether any of click, like, comment or share came (`engaged`) and its session, in time order."""
    within = (reactions.join(impressions.select("impression_id", shown="ts"), on="impression_id", how="inner")
              .filter((pl.col("ts") >= pl.col("shown")) & (pl.col("ts") <= pl.col("shown") + label_window))
              .filter(pl.col("reaction").is_in(REACTIONS))
              .select("impression_id", "reaction").unique())
    wide = (within.with_columns(value=pl.lit(1, pl.Int8))
            .pivot(on="reaction", index="impression_id", values="value", on_columns=list(REACTIONS)))
    seconds = dwell.group_by("impression_id").agg(pl.col("seconds").sum())
    rows = (impressions.sort("ts", "impression_id")
            .join(wide, on="impression_id", how="left", maintain_order="left")
            .join(seconds, on="impression_id", how="left", maintain_order="left"))
    for reaction in REACTIONS:
        if reaction not in rows.columns:
            rows = rows.with_columns(pl.lit(None, pl.Int8).alias(reaction))
    rows = rows.with_columns(
        *[pl.col(r).fill_null(0).cast(pl.Int8) for r in REACTIONS],
        dwell_missing=pl.col("seconds").is_null().cast(pl.Int8),
        dwell_seconds=pl.col("seconds").fill_null(0.0).clip(0, None),
    ).drop("seconds")
    rows = rows.with_columns(
        skip=(pl.col("dwell_seconds") < skip_seconds).cast(pl.Int8),
        dwell=pl.col("dwell_seconds").clip(0, DWELL_CAP),
        engaged=pl.max_horizontal(*POSITIVE).cast(pl.Int8),
    )
    return with_sessions(rows)


def with_sessions(rows: pl.DataFrame) -> pl.DataFrame:
    """`session_id`: the user's impressions with no gap over SESSION_GAP, named by the user and the first time."""
    ordered = rows.sort("user_id", "ts", "position")
    gap = pl.col("ts").diff().over("user_id")
    starts = (gap.is_null() | (gap > SESSION_GAP)).cast(pl.Int32).cum_sum().over("user_id")
    ordered = ordered.with_columns(_session=starts)
    first = pl.col("ts").min().over("user_id", "_session").dt.strftime("%Y%m%dT%H%M%S")
    return (ordered.with_columns(session_id=pl.concat_str(pl.col("user_id"), pl.lit("@"), first)).drop("_session")
            .sort("ts", "impression_id"))


def cutoffs(rows: pl.DataFrame, validation: WindowSize | str, test: WindowSize | str, label_window: timedelta,
            settings: tuple[str, str] = ("validation window", "test window")) -> LabelDelayCutoffs:
    """The time split: the test window is the fewest whole days at the end whose engaged impressions meet `test` (its
    `users` count users who engaged), the validation window the fewest before it that meet `validation`."""
    return LabelDelayCutoffs.from_rows(
        rows, pl.col("engaged") == 1, validation, test, label_window,
        counts={"impressions": pl.len(), "engaged": pl.col("engaged").sum(), "sessions": pl.col("session_id").n_unique()},
        what=("impressions", "impressions followed by a click, like, comment or share"), settings=settings)
