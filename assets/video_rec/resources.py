"""Video recommendation's own resources: its raw-data source, its time split and its training settings."""

from __future__ import annotations

from typing import ClassVar
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import polars as pl

from assets.resources import RawSource
from models.video_rec.features import Cutoffs


class VideoRecSource(RawSource):
    """Raw video data: the seeded simulator, or your parquet files in `raw_dir` (users.parquet, videos.parquet,
    interactions.parquet or interactions/*.parquet; README "Video recommendation")."""

    tables: ClassVar[tuple[str, ...]] = ("users", "videos", "interactions")
    world: str = "video"  # or "ratings" (models.video_rec.ratings)
    seed: int = 11
    users: int = 3_000
    videos: int = 3_000
    new_videos_per_day: int = 60
    drift_kind: str = "none"
    drift_day: int = 0
    arrived_days: int | None = None  # the simulator's clock: later days' views and uploads have not happened yet

    def simulation_config(self):
        from models.video_rec.ratings import RatingsSimulationConfig
        from models.video_rec.simulator import VideoSimulationConfig

        if self.world == "ratings":
            return RatingsSimulationConfig(seed=self.seed, start_date=date.fromisoformat(self.start_date), n_days=self.days,
                                           n_users=self.users, n_movies=self.videos)
        return VideoSimulationConfig(
            seed=self.seed, start_date=date.fromisoformat(self.start_date), n_days=self.days, n_users=self.users,
            n_videos=self.videos, new_videos_per_day=self.new_videos_per_day, drift_kind=self.drift_kind,
            drift_day=self.drift_day,
        )

    def fingerprint(self) -> str:
        return self.simulation_config().fingerprint()

    @property
    def description(self) -> str:
        described = super().description
        return described if self.raw_dir or self.world == "video" else f"ratings world {described}"

    def simulate(self):
        """The simulated world (cached per configuration in this process): tables and latent truth."""
        return _simulated_world(self.simulation_config())

    def scan(self, table: str, columns: dict | None = None) -> pl.LazyFrame:
        frame = super().scan(table, columns)
        if self.raw_dir or self.arrived_days is None:
            return frame
        now = datetime.combine(date.fromisoformat(self.start_date), datetime.min.time(), tzinfo=timezone.utc) + timedelta(
            days=self.arrived_days)
        stamp = {"interactions": "ts", "videos": "upload_ts"}.get(table)
        return frame if stamp is None else frame.filter(pl.col(stamp) < now)

    def table(self, table: str, columns: dict | None = None) -> pl.DataFrame:
        frame = super().table(table, columns)
        if table == "videos" and "channel_id" not in frame.columns:
            frame = frame.with_columns(channel_id=pl.lit(None, pl.String))  # optional column (per-channel rule off)
        return frame

    def oracle(self):
        """The generator's P(next view is the video and relevant) for (user_ids, as_of), or None for your data."""
        if not self.has_oracle:
            return None
        world = self.simulate()
        start = datetime.combine(date.fromisoformat(self.start_date), datetime.min.time(), tzinfo=timezone.utc)
        return lambda user_ids, as_of: world.expected_relevant(user_ids, (as_of - start).total_seconds() / 86_400)


_WORLDS: dict = {}


def _simulated_world(config):
    if config not in _WORLDS:
        from models.video_rec.ratings import RatingsSimulationConfig, simulate_ratings
        from models.video_rec.simulator import simulate

        _WORLDS.clear()  # one world at a time: they are large
        _WORLDS[config] = simulate_ratings(config) if isinstance(config, RatingsSimulationConfig) else simulate(config)
    return _WORLDS[config]


class VideoRecTimeSplit(dg.ConfigurableResource):
    """The test window is the fewest whole days at the end that hold `test_window`; the ranker learns from the
    fewest days before it that hold `ranker_window` (models.video_rec.features.WindowSize)."""

    ranker_window: str = "12% 300users"
    test_window: str = "12% 300users"

    def cutoffs(self, interactions: pl.DataFrame) -> Cutoffs:
        return Cutoffs.from_interactions(interactions, self.ranker_window, self.test_window,
                                         settings=("MLSD_VIDEO_REC_RANKER_WINDOW", "MLSD_VIDEO_REC_TEST_WINDOW"))


class VideoRecTraining(dg.ConfigurableResource):
    epochs: int = 20
    evaluation_users: int = 2_000
    top_k: int = 20  # batch recommendations per user
