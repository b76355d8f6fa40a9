"""Ad click's own resources: its raw-data source, its time split and its event stream."""

from __future__ import annotations

from typing import ClassVar
from datetime import date, timedelta

import dagster as dg

from assets.resources import RawSource


class AdClickSource(RawSource):
    """Raw ad click data: the seeded simulator, or your parquet files in `raw_dir` (users.parquet, ads.parquet and
    impressions.parquet or impressions/*.parquet; README "Bring your own data")."""

    tables: ClassVar[tuple[str, ...]] = ("users", "ads", "impressions", "oracle")
    users: int = 20_000
    ads: int = 1_500
    advertisers: int = 150
    impressions_per_day: int = 60_000
    drift_kind: str = "none"
    drift_day: int = 0
    click_window_s: float = 3600.0  # the label: a click within this long (when the data has click_ts)

    @property
    def click_window(self) -> timedelta:
        return timedelta(seconds=self.click_window_s)

    def has_click_times(self) -> bool:
        """Whether the impressions carry the optional click_ts (the simulator's do)."""
        return "click_ts" in self.scan("impressions").collect_schema().names()

    def simulation_config(self):
        from models.ad_click.simulator import SimulationConfig

        return SimulationConfig(
            seed=self.seed, start_date=date.fromisoformat(self.start_date), n_days=self.days, n_users=self.users,
            n_ads=self.ads, n_advertisers=self.advertisers, impressions_per_day=self.impressions_per_day,
            drift_kind=self.drift_kind, drift_day=self.drift_day, click_window_s=self.click_window_s,
        )

    def fingerprint(self) -> str:
        return self.simulation_config().fingerprint()

    def simulate(self):
        from models.ad_click.simulator import simulate

        return simulate(self.simulation_config())


class AdClickTimeSplit(dg.ConfigurableResource):
    """Warm-up days left out at the start (short history), then validation and test windows at the end, sized by
    the data (models.ad_click.train.TimeSplit)."""

    warmup_days: int = 7
    validation_window: str = "10%"
    test_window: str = "12%"

    def split(self):
        from models.ad_click.train import TimeSplit

        return TimeSplit(self.warmup_days, self.validation_window, self.test_window, settings=(
            "MLSD_AD_CLICK_WARMUP_DAYS", "MLSD_AD_CLICK_VALIDATION_WINDOW", "MLSD_AD_CLICK_TEST_WINDOW"))

