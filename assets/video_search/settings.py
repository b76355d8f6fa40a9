"""Video search's settings: every field is settable as MLSD_VIDEO_SEARCH_<FIELD> (`./dev.sh settings video_search`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from assets.case import InvalidSetting, check_parses
from models.drift import SimulatedDrift
from models.video_search.simulator import DRIFT_KINDS
from models.windows import WindowSize


@dataclass(frozen=True)
class VideoSearchSettings:
    raw_dir: str | None = None  # parquet files of your own (videos, frames, queries, clicks); None runs the simulator
    start_date: date = date(2026, 2, 1)  # simulator only: your files' dates are used as they are
    days: int = 28  # simulator only
    seed: int = 53
    catalogue: int = 2_000  # simulator only: videos uploaded before the first day
    uploads_per_day: int = 30  # simulator only
    queries_per_day: int = 320  # simulator only
    poor_metadata_share: float = 0.2  # simulator only: videos uploaded with a meaningless title and no tags
    # How much each window holds, at least (whole days back from its end): "3d", "10%" of the clicked queries,
    # "500users" (here: clicked queries, as the log has no searcher), or several together. The test window's queries
    # judge every approach; the validation window's choose the encoder's epochs and the fusion weights.
    validation_window: str = "3d 300users"
    test_window: str = "4d 400users"
    dim: int = 64  # the dual encoder's shared space
    epochs: int = 30  # at most: validation picks the best
    drift: str = "none"  # simulator only: trend@DAY (a new topic takes off) or typos@DAY (0-based day it starts)

    def __post_init__(self):
        for name in ("days", "catalogue", "queries_per_day", "dim", "epochs"):
            if getattr(self, name) < 1:
                raise InvalidSetting(name, "must be at least 1")
        if self.uploads_per_day < 0:
            raise InvalidSetting("uploads_per_day", "must be 0 or more")
        if not 0 <= self.poor_metadata_share <= 1:
            raise InvalidSetting("poor_metadata_share", "must be between 0 and 1")
        if self.days < 5:
            raise InvalidSetting("days", "the simulator needs at least 5 days: training, validation and test days")
        check_parses(self, drift=lambda value: SimulatedDrift.parse(value, DRIFT_KINDS, self.days),
                     validation_window=WindowSize.parse, test_window=WindowSize.parse)

    @property
    def simulated_drift(self) -> SimulatedDrift:
        return SimulatedDrift.parse(self.drift, DRIFT_KINDS, self.days)
