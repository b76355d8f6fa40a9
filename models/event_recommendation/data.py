"""Interactions as the models read them: labelled impressions and the time split.

An impression is labelled 1 when the user registers for the event within the label window after it (a
registration counts for the latest impression of the pair before it), so a label is known `label_window` after its
impression: training rows end that long before the window they are judged against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from models.windows import WindowSize, held_out_cutoffs

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


@dataclass(frozen=True)
class Cutoffs:
    """Models learn from impressions before `validation_start` (whose labels are known by then), choose their
    rounds and epochs on [validation_start, test_start), are refitted on everything before `test_start` and judged
    on impressions in [test_start, end)."""

    start: datetime
    validation_start: datetime
    test_start: datetime
    end: datetime
    label_window: timedelta

    @classmethod
    def from_impressions(cls, rows: pl.DataFrame, validation: WindowSize | str, test: WindowSize | str,
                         label_window: timedelta, settings: tuple[str, str] = ("validation window", "test window")) -> Cutoffs:
        """The test window is the fewest whole days at the end whose registrations meet `test` (its `users` count
        users who registered), the validation window the fewest before it that meet `validation`."""
        if rows.is_empty():
            raise ValueError("no impressions: nothing to split")
        positives = rows.filter(pl.col(LABEL) == 1)
        if positives.is_empty():
            raise ValueError("no impression was followed by a registration: the labels are all 0")
        start, validation_start, test_start, end = held_out_cutoffs(rows, positives, validation, test, settings)
        train = rows.filter(pl.col("ts") < validation_start - label_window).height
        held = rows.filter((pl.col("ts") >= validation_start) & (pl.col("ts") < test_start)).height
        if validation_start <= start or train < held:
            raise ValueError(
                f"{settings[0]}={str(validation)!r} and {settings[1]}={str(test)!r} leave {train} impressions "
                f"({(validation_start - start).days} days) to train on, fewer than the validation window's {held}: "
                "too few days of data for these windows, or set smaller windows"
            )
        return cls(start, validation_start, test_start, end, label_window)

    def split(self, rows: pl.DataFrame) -> pl.DataFrame:
        """`split` is train (labels known before the validation window), validation (known before the test window),
        test (known by the end of the data), or null: rows whose label was not yet known, left out."""
        ts = pl.col("ts")
        return rows.with_columns(split=pl.when(ts < self.validation_start - self.label_window).then(pl.lit("train"))
                                 .when((ts >= self.validation_start) & (ts < self.test_start - self.label_window)).then(pl.lit("validation"))
                                 .when((ts >= self.test_start) & (ts < self.end - self.label_window)).then(pl.lit("test"))
                                 .otherwise(None))

    def windows(self, rows: pl.DataFrame) -> pl.DataFrame:
        """One row per window (start, end, impressions, registrations, last impression, next window's start)."""
        split = self.split(rows)
        bounds = [("train", self.start, self.validation_start), ("validation", self.validation_start, self.test_start),
                  ("test", self.test_start, self.end)]
        out = []
        for i, (name, lo, hi) in enumerate(bounds):
            part = split.filter(pl.col("split") == name)
            out.append({"window": name, "start": lo, "end": hi, "impressions": part.height,
                        "registrations": int(part[LABEL].sum()), "first_ts": part["ts"].min(), "last_ts": part["ts"].max(),
                        "next_start": bounds[i + 1][1] if i + 1 < len(bounds) else None})
        return pl.DataFrame(out)
