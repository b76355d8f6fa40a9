"""Sessions as the models read them: the time split, click sentences with their booked listing, the catalogue as of
a time, and the evaluation cases. Everything that takes `as_of` reads only events strictly before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from models.windows import WindowSize, held_out_cutoffs

EVENTS = ("impression", "click", "book")
PRICE_BAND = 0.25  # listings within 25% of each other's nightly price are in the same price band


@dataclass(frozen=True)
class Cutoffs:
    """Models learn from sessions that start before `validation_start`, choose their epochs on the validation window
    [validation_start, test_start), refit on everything before `test_start` and are judged on [test_start, end)."""

    start: datetime
    validation_start: datetime
    test_start: datetime
    end: datetime

    @classmethod
    def from_sessions(cls, sessions: pl.DataFrame, validation: WindowSize | str, test: WindowSize | str,
                      settings: tuple[str, str] = ("validation window", "test window")) -> Cutoffs:
        """The test window is the fewest whole days at the end whose booking sessions meet `test` (its `users` count
        the guests who booked), the validation window the fewest before it that meet `validation`. The training
        days before them must hold at least as many sessions as the validation window."""
        if sessions.is_empty():
            raise ValueError("no session events: nothing to split")
        bookings = sessions.filter(pl.col("event") == "book")
        if bookings.is_empty():
            raise ValueError("no booking in the sessions: the book's metric (the booked listing's rank) needs some")
        start, validation_start, test_start, end = held_out_cutoffs(sessions, bookings, validation, test, settings)
        train = sessions.filter(pl.col("ts") < validation_start)["session_id"].n_unique()
        held = sessions.filter((pl.col("ts") >= validation_start) & (pl.col("ts") < test_start))["session_id"].n_unique()
        if validation_start <= start or train < held:
            raise ValueError(
                f"{settings[0]}={str(validation)!r} and {settings[1]}={str(test)!r} leave {train} sessions "
                f"({(validation_start - start).days} days) to train on, fewer than the validation window's {held}: "
                "too few days of data for these windows, or set smaller windows"
            )
        return cls(start, validation_start, test_start, end)

    def windows(self, sessions: pl.DataFrame) -> pl.DataFrame:
        """One row per window (start, end, sessions, bookings, last event, next window's start), for the split check."""
        bounds = [("train", self.start, self.validation_start), ("validation", self.validation_start, self.test_start),
                  ("test", self.test_start, self.end)]
        rows = []
        for i, (name, lo, hi) in enumerate(bounds):
            part = session_starts(sessions).filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
            events = sessions.join(part.select("session_id"), on="session_id", how="semi")
            rows.append({"window": name, "start": lo, "end": hi, "sessions": part.height,
                         "bookings": events.filter(pl.col("event") == "book").height,
                         "first_ts": part["ts"].min(), "last_ts": part["ts"].max(),
                         "next_start": bounds[i + 1][1] if i + 1 < len(bounds) else None})
        return pl.DataFrame(rows)


def session_starts(sessions: pl.DataFrame) -> pl.DataFrame:
    """session_id, ts of its first event: a session belongs to the window it starts in."""
    return sessions.group_by("session_id").agg(pl.col("ts").min())


def sessions_between(sessions: pl.DataFrame, start: datetime | None, end: datetime | None) -> pl.DataFrame:
    """The events of sessions that start in [start, end), before `end`."""
    starts = session_starts(sessions)
    if start is not None:
        starts = starts.filter(pl.col("ts") >= start)
    if end is not None:
        starts = starts.filter(pl.col("ts") < end)
    inside = sessions.join(starts.select("session_id"), on="session_id", how="semi")
    # A session still open at the cutoff ends there: nothing after `end` is read.
    return inside if end is None else inside.filter(pl.col("ts") < end)


def sentences(sessions: pl.DataFrame) -> pl.DataFrame:
    """One row per session with clicks: its clicked listings in time order (repeats of the same listing in a row
    collapsed) and the listing it booked (null when none)."""
    clicks = (
        sessions.filter(pl.col("event") == "click").sort("session_id", "ts")
        .filter(pl.col("listing_id") != pl.col("listing_id").shift(1).over("session_id"))
        .group_by("session_id", maintain_order=True).agg(clicks=pl.col("listing_id"), ts=pl.col("ts").min())
    )
    booked = sessions.filter(pl.col("event") == "book").group_by("session_id").agg(booked=pl.col("listing_id").last())
    return clicks.join(booked, on="session_id", how="left").sort("ts", "session_id")


@dataclass
class Catalogue:
    """Every listing known as of a time, by position: what similarity is computed over and filtered on."""

    ids: np.ndarray
    city: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    type: np.ndarray
    price: np.ndarray
    beds: np.ndarray
    created: np.ndarray  # microseconds since the epoch (UTC)

    @classmethod
    def from_listings(cls, listings: pl.DataFrame, as_of: datetime | None = None) -> Catalogue:
        frame = listings if as_of is None else listings.filter(pl.col("created_ts") < as_of)
        frame = frame.sort("listing_id")
        return cls(
            ids=frame["listing_id"].to_numpy().astype(str), city=frame["city"].to_numpy().astype(str),
            lat=frame["lat"].to_numpy(), lon=frame["lon"].to_numpy(), type=frame["type"].to_numpy().astype(str),
            price=frame["price"].to_numpy().astype(float), beds=frame["beds"].to_numpy(),
            created=frame["created_ts"].dt.epoch("us").to_numpy(),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __post_init__(self):
        self.position = {listing: i for i, listing in enumerate(self.ids)}

    def positions(self, listing_ids) -> np.ndarray:
        """Positions of the ids; -1 for an id the catalogue does not hold."""
        return np.array([self.position.get(listing, -1) for listing in listing_ids], dtype=np.int64)

    def in_city(self, city: str) -> np.ndarray:
        return np.flatnonzero(self.city == city)

    def same_price_band(self, position: int, candidates: np.ndarray) -> np.ndarray:
        ratio = self.price[candidates] / max(self.price[position], 1e-9)
        return (ratio >= 1 - PRICE_BAND) & (ratio <= 1 / (1 - PRICE_BAND))

    def km(self, position: int, candidates: np.ndarray) -> np.ndarray:
        dlat = (self.lat[candidates] - self.lat[position]) * 111.0
        dlon = (self.lon[candidates] - self.lon[position]) * 111.0 * np.cos(np.radians(self.lat[position]))
        return np.hypot(dlat, dlon)


@dataclass(frozen=True)
class Cases:
    """What the book's metric and the next-click hit rate are computed on, as catalogue positions.

    `booked`: per session that booked a listing other than its first click, (session id, the first clicked listing,
    the session's other shown or clicked listings, the booked one). `next_clicks`: (clicked listing, the next
    listing clicked in the same session)."""

    booked: list[tuple[str, int, np.ndarray, int]]
    next_clicks: np.ndarray  # (n, 2) positions


def evaluation_cases(sessions: pl.DataFrame, catalogue: Catalogue, max_next_clicks: int = 4_000, seed: int = 0) -> Cases:
    """The sessions' cases over the catalogue (listings it does not hold are left out)."""
    seen = (
        sessions.filter(pl.col("event").is_in(["impression", "click"]))
        .group_by("session_id").agg(pl.col("listing_id").unique(maintain_order=True))
    )
    told = sentences(sessions).filter(pl.col("booked").is_not_null()).join(seen, on="session_id", how="left")
    booked = []
    for session_id, clicks, booked_id, shown in told.select("session_id", "clicks", "booked", "listing_id").iter_rows():
        first = catalogue.position.get(clicks[0], -1)
        target = catalogue.position.get(booked_id, -1)
        if first < 0 or target < 0 or first == target:
            continue
        others = catalogue.positions(set(shown or []) | set(clicks) | {booked_id})
        others = np.unique(others[(others >= 0) & (others != first)])
        booked.append((session_id, first, others, target))
    pairs = []
    for clicks in sentences(sessions)["clicks"].to_list():
        positions = catalogue.positions(clicks)
        pairs += [(a, b) for a, b in zip(positions[:-1], positions[1:]) if a >= 0 and b >= 0 and a != b]
    pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) > max_next_clicks:
        pairs = pairs[np.sort(np.random.default_rng(seed).choice(len(pairs), max_next_clicks, replace=False))]
    return Cases(booked=booked, next_clicks=pairs)


def leakage_audit(fit_last_ts: datetime, refit_last_ts: datetime, validation_start: datetime,
                  test_start: datetime) -> pl.DataFrame:
    """One row per training input with the last event it read and the time it must end before: the epochs are
    chosen on the validation window by a model that learned only before it, and the refit ends before the test."""
    return pl.DataFrame({
        "input": ["sessions the epochs were chosen with", "sessions of the refit"],
        "last_ts": [fit_last_ts, refit_last_ts],
        "must_end_before": [validation_start, test_start],
    })
