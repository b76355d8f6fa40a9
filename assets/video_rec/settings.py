"""Video recommendation's settings: every field is settable as MLSD_VIDEO_REC_<FIELD> (`./dev.sh settings video_rec`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from assets.case import InvalidSetting, check_parses
from models.drift import SimulatedDrift
from models.video_rec.features import WindowSize

DRIFT_KINDS = ("taste", "catalogue")
# Each simulated world's size when days, users and videos are not set: the video simulator's four weeks, and the
# ratings world's seven months of a movie-ratings set (about the size of the public one issue 13 used).
WORLD_SIZES = {"video": (28, 3_000, 3_000), "ratings": (210, 1_000, 1_700)}


@dataclass(frozen=True)
class VideoRecSettings:
    raw_dir: str | None = None  # parquet files of your own; None runs the simulator
    # Simulator only: "video" (views with watch fractions, uploads every day) or "ratings" (explicit ratings shaped
    # like public movie-ratings data: months of bursty sessions, a long tail, activity tailing off; README).
    world: str = "video"
    start_date: date = date(2026, 1, 1)  # simulator only: your files' dates are used as they are
    days: int | None = None  # simulator only; None: the world's own (video 28, ratings 210)
    seed: int = 11
    users: int | None = None  # None: the world's own (video 3,000, ratings 1,000)
    videos: int | None = None  # the catalogue at the start; None: the world's own (video 3,000, ratings 1,700 movies)
    new_videos_per_day: int = 60  # video world only
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
        if self.world not in WORLD_SIZES:
            raise InvalidSetting("world", f"must be one of {', '.join(WORLD_SIZES)}, not {self.world!r}")
        for name in ("days", "users", "videos", "top_k", "epochs", "evaluation_users"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidSetting(name, "must be at least 1")
        if self.world == "ratings" and self.simulated_days < 14:
            raise InvalidSetting("days", "the ratings world needs at least 14 days of sessions")
        if self.world == "ratings" and self.drift != "none":
            raise InvalidSetting("drift", "the ratings world has no simulated drift (use the video world)")
        check_parses(self, ranker_window=WindowSize.parse, test_window=WindowSize.parse,
                     drift=lambda value: SimulatedDrift.parse(value, DRIFT_KINDS, self.simulated_days))
        if self.arrived_days is not None and not 0 < self.arrived_days <= self.simulated_days:
            raise InvalidSetting("arrived_days", f"must be between 1 and days ({self.simulated_days})")
        if self.new_videos_per_day < 0:
            raise InvalidSetting("new_videos_per_day", "must be 0 or more")

    @property
    def simulated_days(self) -> int:
        return self.days or WORLD_SIZES[self.world][0]

    @property
    def simulated_users(self) -> int:
        return self.users or WORLD_SIZES[self.world][1]

    @property
    def simulated_videos(self) -> int:
        return self.videos or WORLD_SIZES[self.world][2]

    @property
    def simulated_drift(self) -> SimulatedDrift:
        return SimulatedDrift.parse(self.drift, DRIFT_KINDS, self.simulated_days)
