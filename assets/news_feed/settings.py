"""The news feed's settings: every field is settable as MLSD_NEWS_FEED_<FIELD> (`./dev.sh settings news_feed`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from assets.case import InvalidSetting, check_parses
from models.drift import SimulatedDrift
from models.windows import WindowSize, parse_duration

DRIFT_KINDS = ("taste", "quality")


@dataclass(frozen=True)
class NewsFeedSettings:
    raw_dir: str | None = None  # parquet files of your own (users, friendships, posts, impressions, reactions, dwell)
    start_date: date = date(2026, 3, 1)  # simulator only: your files' dates are used as they are
    days: int = 21  # simulator only
    seed: int = 41
    users: int = 2_500  # simulator only
    sessions_per_day: int = 700  # simulator only: feeds opened a day
    # A reaction within this long after an impression labels it; a row's labels are known this long after it, so
    # training rows end this long before the window they are judged against.
    label_window: str = "1h"
    skip_seconds: float = 2.0  # dwell under this is a skip
    # How much each window holds, at least (whole days back from its end): "4d", "10%" of the engaged impressions,
    # "200users" (users who engaged), or several together.
    validation_window: str = "3d 150users"
    test_window: str = "4d 200users"
    # The business's weights of the score, over the defaults (models/news_feed/evaluation.py DEFAULT_WEIGHTS):
    # "share=10 hide=-20"; heads click, like, comment, share, hide, block, skip and dwell (per second, capped at 60).
    weights: str = ""
    candidate_days: int = 3  # the service retrieves posts of the user's ties from this many days back
    max_candidates: int = 500  # the service ranks at most this many (the newest)
    drift: str = "none"  # simulator only: taste@DAY or quality@DAY (0-based day the drift starts)

    def __post_init__(self):
        from models.news_feed.evaluation import parse_weights

        for name in ("days", "users", "sessions_per_day", "candidate_days", "max_candidates"):
            if getattr(self, name) < 1:
                raise InvalidSetting(name, "must be at least 1")
        if self.days < 8:
            raise InvalidSetting("days", "the simulator needs at least 8 days: training, validation and test days")
        if not 0 < self.skip_seconds <= 600:
            raise InvalidSetting("skip_seconds", "must be above 0 and at most 600")
        check_parses(self, label_window=parse_duration,
                     drift=lambda value: SimulatedDrift.parse(value, DRIFT_KINDS, self.days),
                     validation_window=WindowSize.parse, test_window=WindowSize.parse, weights=parse_weights)

    @property
    def simulated_drift(self) -> SimulatedDrift:
        return SimulatedDrift.parse(self.drift, DRIFT_KINDS, self.days)
