"""The news feed's own resources: its raw-data source, its time split and labels, and the business's weights."""

from __future__ import annotations

from datetime import date, timedelta
from typing import ClassVar

import dagster as dg
import polars as pl

from assets.resources import RawSource
from models.windows import LabelDelayCutoffs


class NewsFeedSource(RawSource):
    """Raw data: the seeded simulator, or your parquet files in `raw_dir` (users, friendships, posts, impressions,
    reactions, dwell; README "News feed")."""

    tables: ClassVar[tuple[str, ...]] = ("users", "friendships", "posts", "impressions", "reactions", "dwell",
                                         "impression_truth")
    seed: int = 41
    users: int = 2_500
    sessions_per_day: int = 700
    drift_kind: str = "none"
    drift_day: int = 0

    def simulation_config(self):
        from models.news_feed.simulator import SimulationConfig

        return SimulationConfig(seed=self.seed, start_date=date.fromisoformat(self.start_date), n_days=self.days,
                                n_users=self.users, sessions_per_day=self.sessions_per_day, drift_kind=self.drift_kind,
                                drift_day=self.drift_day)

    def fingerprint(self) -> str:
        return self.simulation_config().fingerprint()

    def simulate(self):
        from models.news_feed.simulator import simulate

        return simulate(self.simulation_config())

    def truth(self) -> pl.DataFrame | None:
        """The generator's probability of every head (at the logged position and at the top) per impression, or None
        for your data."""
        return self.table("impression_truth") if self.has_oracle else None


class NewsFeedTimeSplit(dg.ConfigurableResource):
    """Labels and the split: a reaction within `label_window` of its impression labels it; dwell under `skip_seconds`
    is a skip. The test window is the fewest whole days at the end holding `test_window` of engaged impressions; the
    validation window the fewest before it holding `validation_window` (models.windows.WindowSize)."""

    label_window: str = "1h"
    skip_seconds: float = 2.0
    validation_window: str = "3d 150users"
    test_window: str = "4d 200users"

    @property
    def label_delay(self) -> timedelta:
        from models.windows import parse_duration

        return parse_duration(self.label_window)

    def cutoffs(self, rows: pl.DataFrame) -> LabelDelayCutoffs:
        from models.news_feed.data import cutoffs

        return cutoffs(rows, self.validation_window, self.test_window, self.label_delay, settings=(
            "MLSD_NEWS_FEED_VALIDATION_WINDOW", "MLSD_NEWS_FEED_TEST_WINDOW"))


class NewsFeedObjective(dg.ConfigurableResource):
    """The business's weights of the feed's score (MLSD_NEWS_FEED_WEIGHTS over the defaults)."""

    weights: str = ""

    @property
    def resolved(self) -> dict[str, float]:
        from models.news_feed.evaluation import parse_weights

        return parse_weights(self.weights)


class NewsFeedRetrieval(dg.ConfigurableResource):
    """How far back the feed retrieves posts of the user's ties: the online snapshot holds the posts of this window."""

    candidate_days: int = 3
