"""Event recommendation's own resources: its raw-data source and its time split."""

from __future__ import annotations

from datetime import date, timedelta
from typing import ClassVar

import dagster as dg
import polars as pl

from assets.resources import RawSource
from models.windows import LabelDelayCutoffs


class EventRecommendationSource(RawSource):
    """Raw data: the seeded simulator, or your parquet files in `raw_dir` (users, events, friendships, interactions;
    README "Event recommendation")."""

    tables: ClassVar[tuple[str, ...]] = ("users", "events", "friendships", "interactions", "impression_truth")
    seed: int = 31
    cities: int = 6
    users: int = 4_000
    events_per_day: int = 40
    sessions_per_day: int = 800
    drift_kind: str = "none"
    drift_day: int = 0

    def simulation_config(self):
        from models.event_recommendation.simulator import SimulationConfig

        return SimulationConfig(
            seed=self.seed, start_date=date.fromisoformat(self.start_date), n_days=self.days, n_cities=self.cities,
            n_users=self.users, events_per_day=self.events_per_day, sessions_per_day=self.sessions_per_day,
            drift_kind=self.drift_kind, drift_day=self.drift_day,
        )

    def fingerprint(self) -> str:
        return self.simulation_config().fingerprint()

    def simulate(self):
        from models.event_recommendation.simulator import simulate

        return simulate(self.simulation_config())

    def truth(self) -> pl.DataFrame | None:
        """The generator's P(register) of every impression, or None for your data."""
        return self.table("impression_truth") if self.has_oracle else None


class EventRecommendationTimeSplit(dg.ConfigurableResource):
    """The test window is the fewest whole days at the end holding `test_window` of registrations; the validation
    window the fewest before it holding `validation_window` (models.windows.WindowSize). A label is known
    `label_window` after its impression."""

    label_window: str = "12h"
    validation_window: str = "3d 150users"
    test_window: str = "4d 200users"

    @property
    def label_delay(self) -> timedelta:
        from models.windows import parse_duration

        return parse_duration(self.label_window)

    def cutoffs(self, rows: pl.DataFrame) -> LabelDelayCutoffs:
        from models.event_recommendation.data import cutoffs

        return cutoffs(rows, self.validation_window, self.test_window, self.label_delay, settings=(
            "MLSD_EVENT_RECOMMENDATION_VALIDATION_WINDOW", "MLSD_EVENT_RECOMMENDATION_TEST_WINDOW"))

