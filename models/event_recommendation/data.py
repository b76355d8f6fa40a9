"""Interactions as the models read them: labelled impressions and the time split.

An impression is labelled 1 when the user registers for the event within the label window after it (a
registration counts for the latest impression of the pair before it), so a label is known `label_window` after its
impression: training rows end that long before the window they are judged against.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from models.windows import LabelDelayCutoffs, WindowSize

KINDS = ("impression", "register", "invite")
LABEL = "registered"
KEY = ("user_id", "event_id", "ts")  # an impression


def of_kind(interactions: pl.DataFrame, kind: str) -> pl.DataFrame:
    return interactions.filter(pl.col("kind") == kind)


def labelled_impressions(interactions: pl.DataFrame, label_window: timedelta) -> pl.DataFrame:
    """user_id, event_id, ts, registered (0/1) and registered_ts of every impression, in time order."""
    impressions = (of_kind(interactions, "impression").select(*KEY).unique(maintain_order=True)
                   .sort("ts").with_columns(shown_ts=pl.col("ts")))
    registrations = of_kind(interactions, "register").select("user_id", "event_id", registered_ts="ts").sort("registered_ts")
    attributed = (
        registrations.join_asof(impressions, left_on="registered_ts", right_on="ts", by=["user_id", "event_id"],
                                strategy="backward", tolerance=label_window, check_sortedness=False)
        .filter(pl.col("shown_ts").is_not_null())
        .group_by("user_id", "event_id", "shown_ts").agg(pl.col("registered_ts").min())
    )
    return (
        impressions.join(attributed, on=["user_id", "event_id", "shown_ts"], how="left")
        .with_columns(pl.col("registered_ts").is_not_null().cast(pl.Int8).alias(LABEL))
        .drop("shown_ts")
    )


def cutoffs(rows: pl.DataFrame, validation: WindowSize | str, test: WindowSize | str, label_window: timedelta,
            settings: tuple[str, str] = ("validation window", "test window")) -> LabelDelayCutoffs:
    """The time split of labelled impressions: the test window is the fewest whole days at the end whose registrations
    meet `test` (its `users` count users who registered), the validation window the fewest before it that meet
    `validation` (models.windows.LabelDelayCutoffs)."""
    return LabelDelayCutoffs.from_rows(
        rows, pl.col(LABEL) == 1, validation, test, label_window,
        counts={"impressions": pl.len(), "registrations": pl.col(LABEL).sum()},
        what=("impressions", "impressions followed by a registration"), settings=settings)
