"""Video search's own resources: its raw-data source, its time split and its encoder's training settings."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import dagster as dg
import polars as pl

from assets.resources import RawSource
from models.video_search.data import Cutoffs


class VideoSearchSource(RawSource):
    """Raw data: the seeded simulator, or your parquet files in `raw_dir` (videos, frames, queries, clicks; README
    "Video search")."""

    tables: ClassVar[tuple[str, ...]] = ("videos", "frames", "queries", "clicks", "video_truth", "query_truth")
    seed: int = 53
    catalogue: int = 2_000
    uploads_per_day: int = 30
    queries_per_day: int = 320
    poor_metadata_share: float = 0.2
    drift_kind: str = "none"
    drift_day: int = 0

    def simulation_config(self):
        from models.video_search.simulator import SimulationConfig

        return SimulationConfig(seed=self.seed, start_date=date.fromisoformat(self.start_date), n_days=self.days,
                                catalogue=self.catalogue, uploads_per_day=self.uploads_per_day,
                                queries_per_day=self.queries_per_day, poor_metadata_share=self.poor_metadata_share,
                                drift_kind=self.drift_kind, drift_day=self.drift_day)

    def fingerprint(self) -> str:
        return self.simulation_config().fingerprint()

    def simulate(self):
        from models.video_search.simulator import simulate

        return simulate(self.simulation_config())

    def truth(self) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        """The generator's (video truth, query truth), or None for your data."""
        if not self.has_oracle:
            return None
        return self.table("video_truth"), self.table("query_truth")


class VideoSearchTimeSplit(dg.ConfigurableResource):
    """The test window is the fewest whole days at the end holding `test_window` of clicked queries; the validation
    window the fewest before it holding `validation_window` (models.windows.WindowSize)."""

    validation_window: str = "3d 300users"
    test_window: str = "4d 400users"

    def cutoffs(self, queries: pl.DataFrame, clicks: pl.DataFrame) -> Cutoffs:
        return Cutoffs.from_log(queries, clicks, self.validation_window, self.test_window, settings=(
            "MLSD_VIDEO_SEARCH_VALIDATION_WINDOW", "MLSD_VIDEO_SEARCH_TEST_WINDOW"))


class VideoSearchTraining(dg.ConfigurableResource):
    dim: int = 64
    epochs: int = 30
