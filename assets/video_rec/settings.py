"""Video recommendation's settings: every field is settable as MLSD_VIDEO_REC_<FIELD> (`./dev.sh settings video_rec`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from assets.case import InvalidSetting
from models.drift import SimulatedDrift
from models.video_rec.features import WindowSize

DRIFT_KINDS = ("taste", "catalogue")


@dataclass(frozen=True)
class VideoRecSettings:
    raw_dir: str | None = None  # parquet files of your own; None runs the simulator
    start_date: date = date(2026, 1, 1)  # simulator only: your files' dates are used as they are
    days: int = 28  # simulator only
    seed: int = 11
    users: int = 3_000
    videos: int = 3_000
    new_videos_per_day: int = 60
    # How much each window holds, at least (whole days back from its end): "4d", "12%" of the interactions,
    # "300users", or several together. The defaults give the simulator its 4 days each, and months of real data
    # that tail off at the end a test window that still holds hundreds of users.
    ranker_window: str = "12% 300users"
    test_window: str = "12% 300users"
    top_k: int = 20  # batch recommendations per user
    epochs: int = 20
    evaluation_users: int = 2_000  # test users sampled for the offline metrics
    drift: str = "none"  # simulator only: taste@DAY or catalogue@DAY (0-based day the drift starts)
    # Simulator only: how many of the days have happened so far (None: all). Raise it to play the world forward:
    # the views and uploads of later days are not there yet, as with your own files before they land.
    arrived_days: int | None = None

    def __post_init__(self):
        for name in ("days", "users", "videos", "top_k", "epochs", "evaluation_users"):
            if getattr(self, name) < 1:
                raise InvalidSetting(name, "must be at least 1")
        for name in ("ranker_window", "test_window"):
            try:
                WindowSize.parse(getattr(self, name))
            except ValueError as error:
                raise InvalidSetting(name, str(error)) from None
        try:
            SimulatedDrift.parse(self.drift, DRIFT_KINDS, self.days)
        except ValueError as error:
            raise InvalidSetting("drift", str(error)) from None
        if self.arrived_days is not None and not 0 < self.arrived_days <= self.days:
            raise InvalidSetting("arrived_days", f"must be between 1 and days ({self.days})")
        if self.new_videos_per_day < 0:
            raise InvalidSetting("new_videos_per_day", "must be 0 or more")

    @property
    def simulated_drift(self) -> SimulatedDrift:
        return SimulatedDrift.parse(self.drift, DRIFT_KINDS, self.days)
