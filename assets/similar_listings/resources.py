"""Similar listings' own resources: its raw-data source, its time split and its training settings."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import dagster as dg
import polars as pl

from assets.resources import RawSource
from models.similar_listings.data import Cutoffs


class SimilarListingsSource(RawSource):
    """Raw marketplace data: the seeded simulator, or your parquet files in `raw_dir` (listings.parquet,
    sessions.parquet or sessions/*.parquet; README "Similar listings")."""

    tables: ClassVar[tuple[str, ...]] = ("listings", "sessions", "listing_truth", "session_truth")
    seed: int = 29
    cities: int = 4
    listings: int = 3_000
    new_listings_per_day: int = 15
    guests: int = 5_000
    sessions_per_day: int = 800
    drift_kind: str = "none"
    drift_day: int = 0

    def simulation_config(self):
        from models.similar_listings.simulator import SimulationConfig

        return SimulationConfig(
            seed=self.seed, start_date=date.fromisoformat(self.start_date), n_days=self.days, n_cities=self.cities,
            n_listings=self.listings, new_listings_per_day=self.new_listings_per_day, n_users=self.guests,
            sessions_per_day=self.sessions_per_day, drift_kind=self.drift_kind, drift_day=self.drift_day,
        )

    def fingerprint(self) -> str:
        return self.simulation_config().fingerprint()

    def simulate(self):
        from models.similar_listings.simulator import simulate

        return simulate(self.simulation_config())

    def truth(self) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        """The generator's (listing truth, session utilities), or None for your data."""
        if not self.has_oracle:
            return None
        return self.table("listing_truth"), self.table("session_truth")


class SimilarListingsTimeSplit(dg.ConfigurableResource):
    """The test window is the fewest whole days at the end that hold `test_window` of bookings; the validation
    window the fewest before it that hold `validation_window` (models.windows.WindowSize)."""

    validation_window: str = "3d 150users"
    test_window: str = "4d 200users"

    def cutoffs(self, sessions: pl.DataFrame) -> Cutoffs:
        return Cutoffs.from_sessions(sessions, self.validation_window, self.test_window, settings=(
            "MLSD_SIMILAR_LISTINGS_VALIDATION_WINDOW", "MLSD_SIMILAR_LISTINGS_TEST_WINDOW"))


class SimilarListingsTraining(dg.ConfigurableResource):
    dim: int = 32
    epochs: int = 12
    min_clicks: int = 2
