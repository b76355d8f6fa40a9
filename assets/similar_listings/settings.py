"""Similar listings' settings: every field is settable as MLSD_SIMILAR_LISTINGS_<FIELD> (`./dev.sh settings
similar_listings`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from assets.case import InvalidSetting, check_parses
from models.drift import SimulatedDrift
from models.similar_listings.simulator import CITIES
from models.windows import WindowSize

DRIFT_KINDS = ("budget", "taste")


@dataclass(frozen=True)
class SimilarListingsSettings:
    raw_dir: str | None = None  # parquet files of your own (listings, sessions); None runs the simulator
    start_date: date = date(2026, 1, 1)  # simulator only: your files' dates are used as they are
    days: int = 28  # simulator only
    seed: int = 29
    cities: int = 4  # simulator only: how many of its real cities have listings
    listings: int = 3_000  # simulator only: on the market before the first day
    new_listings_per_day: int = 15  # simulator only
    guests: int = 5_000  # simulator only
    sessions_per_day: int = 800  # simulator only
    # How much each window holds, at least (whole days back from its end): "3d", "10%" of the bookings, "150users"
    # (guests who booked), or several together. The test window's sessions judge every model; the validation
    # window's choose the epochs.
    validation_window: str = "3d 150users"
    test_window: str = "4d 200users"
    dim: int = 32
    epochs: int = 12  # at most: validation picks the best
    min_clicks: int = 2  # listings clicked fewer times before a cutoff get the cold-start embedding
    drift: str = "none"  # simulator only: budget@DAY or taste@DAY (0-based day the drift starts)

    def __post_init__(self):
        for name in ("days", "listings", "guests", "sessions_per_day", "dim", "epochs", "min_clicks"):
            if getattr(self, name) < 1:
                raise InvalidSetting(name, "must be at least 1")
        if not 1 <= self.cities <= len(CITIES):
            raise InvalidSetting("cities", f"must be between 1 and {len(CITIES)}")
        if self.new_listings_per_day < 0:
            raise InvalidSetting("new_listings_per_day", "must be 0 or more")
        if self.days < 5:
            raise InvalidSetting("days", "the simulator needs at least 5 days: training, validation and test days")
        check_parses(self, drift=lambda value: SimulatedDrift.parse(value, DRIFT_KINDS, self.days),
                     validation_window=WindowSize.parse, test_window=WindowSize.parse)

    @property
    def simulated_drift(self) -> SimulatedDrift:
        return SimulatedDrift.parse(self.drift, DRIFT_KINDS, self.days)
