"""Event recommendation's settings: every field is settable as MLSD_EVENT_RECOMMENDATION_<FIELD> (`./dev.sh settings
event_recommendation`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from assets.case import InvalidSetting, check_parses
from models.drift import SimulatedDrift
from models.windows import WindowSize, parse_duration

DRIFT_KINDS = ("price", "taste", "radius")


@dataclass(frozen=True)
class EventRecommendationSettings:
    raw_dir: str | None = None  # parquet files of your own (users, events, friendships, interactions); None simulates
    start_date: date = date(2026, 3, 1)  # simulator only: your files' dates are used as they are
    days: int = 35  # simulator only
    seed: int = 31
    cities: int = 6  # simulator only: the largest cities within 350 km of New York, at least 40 km apart
    users: int = 4_000  # simulator only
    events_per_day: int = 40  # simulator only
    sessions_per_day: int = 800  # simulator only: recommendation pages shown a day
    # A registration within this long after an impression makes it a positive; a row's label is known this long after
    # it, so training rows end this long before the window they are judged against.
    label_window: str = "12h"
    # How much each window holds, at least (whole days back from its end): "4d", "10%" of the registrations,
    # "200users" (users who registered), or several together.
    validation_window: str = "3d 150users"
    test_window: str = "4d 200users"
    radius_km: float = 80.0  # the service's event filter: events within this distance of the user
    max_candidates: int = 500  # the service ranks at most this many filtered events (the nearest)
    drift: str = "none"  # simulator only: price@DAY, taste@DAY or radius@DAY (0-based day the drift starts)

    def __post_init__(self):
        for name in ("days", "users", "events_per_day", "sessions_per_day", "max_candidates"):
            if getattr(self, name) < 1:
                raise InvalidSetting(name, "must be at least 1")
        if not 1 <= self.cities <= 12:
            raise InvalidSetting("cities", "must be between 1 and 12")
        if self.days < 8:
            raise InvalidSetting("days", "the simulator needs at least 8 days: training, validation and test days")
        if not 0 < self.radius_km <= 20_000:
            raise InvalidSetting("radius_km", "must be above 0 and at most 20000")
        check_parses(self, label_window=parse_duration,
                     drift=lambda value: SimulatedDrift.parse(value, DRIFT_KINDS, self.days),
                     validation_window=WindowSize.parse, test_window=WindowSize.parse)

    @property
    def simulated_drift(self) -> SimulatedDrift:
        return SimulatedDrift.parse(self.drift, DRIFT_KINDS, self.days)
