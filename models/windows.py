"""Time windows sized by the data: how much a validation or test window must hold, whatever the data's shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl


@dataclass(frozen=True)
class WindowSize:
    """The least a time window must hold, in whole days counted back from where it ends: every criterion given
    (whole days, a share of all the rows, distinct users), so that it measures something on data of any
    shape: the simulator's even days, or months of activity that tails off at the end.

    Written as the settings take it: "4d", "12%", "300users", or together, "12% 300users".
    """

    days: int = 0
    share: float = 0.0
    users: int = 0

    @classmethod
    def parse(cls, text: str) -> WindowSize:
        days, share, users = 0, 0.0, 0
        parts = text.replace("+", " ").split()
        for part in parts:
            try:
                if part.endswith("%"):
                    share = float(part[:-1]) / 100
                elif part.endswith("users"):
                    users = int(part[: -len("users")])
                elif part.endswith("d"):
                    days = int(part[:-1])
                else:
                    raise ValueError
            except ValueError:
                raise ValueError(f"{part!r} is not a window size: write whole days (4d), a share of the rows "
                                 "(12%) or distinct users (300users), or several of them, e.g. '12% 300users'") from None
        if not parts or days < 0 or users < 0 or not 0 <= share < 1:
            raise ValueError(f"{text!r}: give at least one of days >= 1, a share in (0%, 100%), users >= 1")
        return cls(days, share, users)

    def __str__(self) -> str:
        parts = [f"{self.days}d" if self.days else "", f"{100 * self.share:g}%" if self.share else "",
                 f"{self.users}users" if self.users else ""]
        return " ".join(p for p in parts if p)


def trailing_days(
    rows: pl.DataFrame, end: datetime, size: WindowSize, total: int, setting: str, users: str = "user_id"
) -> int:
    """The fewest whole days before `end` whose rows meet `size` (`total`: all the rows, for shares; `users`: the
    column whose distinct values count as users); an error naming `setting` when no number of days does."""
    days_before = ((pl.lit(end) - pl.col("ts")).dt.total_microseconds() // 86_400_000_000).cast(pl.Int64)
    per_user = rows.select(users, back=days_before).group_by(users).agg(pl.col("back").min())
    available = int(rows.select(days_before.max()).item()) + 1 if rows.height else 0
    counts = rows.select(back=days_before)["back"].value_counts().sort("back")
    by_day = pl.DataFrame({"back": range(available)}).join(counts, on="back", how="left").fill_null(0)
    cumulative = by_day["count"].cum_sum().to_list()
    newest = per_user["back"].value_counts().sort("back")  # each user counted on the day nearest the end
    user_counts = pl.DataFrame({"back": range(available)}).join(newest, on="back", how="left").fill_null(0)
    cumulative_users = user_counts["count"].cum_sum().to_list()
    for n in range(max(size.days, 1), available + 1):
        if cumulative[n - 1] >= size.share * total and cumulative_users[n - 1] >= size.users:
            return n
    held = (f"all {available} days hold {cumulative[-1] if cumulative else 0} rows "
            f"({100 * (cumulative[-1] if cumulative else 0) / max(total, 1):.3g}%) of "
            f"{cumulative_users[-1] if cumulative_users else 0} users")
    raise ValueError(f"{setting}={str(size)!r} cannot be met: before {end:%Y-%m-%d} {held}")


def held_out_cutoffs(rows: pl.DataFrame, positives: pl.DataFrame, validation: WindowSize | str, test: WindowSize | str,
                     settings: tuple[str, str], users: str = "user_id") -> tuple[datetime, datetime, datetime, datetime]:
    """(start, validation_start, test_start, end) in whole days: the test window is the fewest days at the end whose
    `positives` (the rows the metric is judged on: bookings, registrations) meet `test`, the validation window the
    fewest days before it that meet `validation`; `settings` name the two settings in errors; `users` is the column
    whose distinct values a window's "users" count."""
    validation = WindowSize.parse(validation) if isinstance(validation, str) else validation
    test = WindowSize.parse(test) if isinstance(test, str) else test
    first, last = rows["ts"].min(), rows["ts"].max()
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    end = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    total = positives.height
    test_start = end - timedelta(days=trailing_days(positives, end, test, total, settings[1], users))
    earlier = positives.filter(pl.col("ts") < test_start)
    validation_start = test_start - timedelta(days=trailing_days(earlier, test_start, validation, total, settings[0], users))
    return start, validation_start, test_start, end


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str) -> timedelta:
    """A positive duration as the settings take it: 900s, 30m, 1h, 2d."""
    text = text.strip()
    try:
        value, unit = float(text[:-1]), _UNITS[text[-1:]]
    except (ValueError, KeyError):
        raise ValueError(f"{text!r} is not a duration: write seconds (900s), minutes (30m), hours (1h) or days (2d)") from None
    if value <= 0:
        raise ValueError(f"{text!r}: a duration must be positive")
    return timedelta(seconds=value * unit)


def split_rows(rows: pl.DataFrame, name: str) -> pl.DataFrame:
    """The rows of one window (train, validation or test) of a frame with a `split` column."""
    return rows.filter(pl.col("split") == name)


def refit_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Train and validation rows: every label known before the test window (the final model learns from them)."""
    return rows.filter(pl.col("split").is_in(["train", "validation"]))


@dataclass(frozen=True)
class LabelDelayCutoffs:
    """A time split of rows whose label is known `label_window` after them (a registration, a reaction): models
    learn from rows before `validation_start` (whose labels are known by then), choose their rounds and epochs on
    [validation_start, test_start), are refitted on everything before `test_start` and judged on rows in
    [test_start, end). `counts` name what each window reports (column name: polars expression over its rows)."""

    start: datetime
    validation_start: datetime
    test_start: datetime
    end: datetime
    label_window: timedelta
    counts: tuple[tuple[str, pl.Expr], ...]

    @classmethod
    def from_rows(cls, rows: pl.DataFrame, positive: pl.Expr, validation: WindowSize | str, test: WindowSize | str,
                  label_window: timedelta, counts: dict[str, pl.Expr], what: tuple[str, str],
                  settings: tuple[str, str] = ("validation window", "test window")) -> LabelDelayCutoffs:
        """The test window is the fewest whole days at the end whose `positive` rows meet `test` (its `users` count
        users with a positive row), the validation window the fewest before it that meet `validation`. `what` names
        the rows and the positives in errors (impressions, registrations)."""
        rows_name, positives_name = what
        if rows.is_empty():
            raise ValueError(f"no {rows_name}: nothing to split")
        positives = rows.filter(positive)
        if positives.is_empty():
            raise ValueError(f"no {positives_name} among the {rows_name}: the labels are all 0")
        start, validation_start, test_start, end = held_out_cutoffs(rows, positives, validation, test, settings)
        train = rows.filter(pl.col("ts") < validation_start - label_window).height
        held = rows.filter((pl.col("ts") >= validation_start) & (pl.col("ts") < test_start)).height
        if validation_start <= start or train < held:
            raise ValueError(
                f"{settings[0]}={str(validation)!r} and {settings[1]}={str(test)!r} leave {train} {rows_name} "
                f"({(validation_start - start).days} days) to train on, fewer than the validation window's {held}: "
                "too few days of data for these windows, or set smaller windows"
            )
        return cls(start, validation_start, test_start, end, label_window, tuple(counts.items()))

    def split(self, rows: pl.DataFrame) -> pl.DataFrame:
        """`split` is train (labels known before the validation window), validation (known before the test window),
        test (known by the end of the data), or null: rows whose label was not yet known, left out."""
        ts = pl.col("ts")
        return rows.with_columns(split=pl.when(ts < self.validation_start - self.label_window).then(pl.lit("train"))
                                 .when((ts >= self.validation_start) & (ts < self.test_start - self.label_window)).then(pl.lit("validation"))
                                 .when((ts >= self.test_start) & (ts < self.end - self.label_window)).then(pl.lit("test"))
                                 .otherwise(None))

    def windows(self, rows: pl.DataFrame) -> pl.DataFrame:
        """One row per window (start, end, the counts, first and last row, next window's start)."""
        split = self.split(rows)
        bounds = [("train", self.start, self.validation_start), ("validation", self.validation_start, self.test_start),
                  ("test", self.test_start, self.end)]
        out = []
        for i, (name, lo, hi) in enumerate(bounds):
            part = split.filter(pl.col("split") == name)
            counted = part.select(**{k: e for k, e in self.counts}).row(0, named=True) if part.height else {k: 0 for k, _ in self.counts}
            out.append({"window": name, "start": lo, "end": hi, **{k: int(v or 0) for k, v in counted.items()},
                        "first_ts": part["ts"].min(), "last_ts": part["ts"].max(),
                        "next_start": bounds[i + 1][1] if i + 1 < len(bounds) else None})
        return pl.DataFrame(out)
