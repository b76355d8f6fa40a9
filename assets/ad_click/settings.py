"""Ad click's settings: every field is settable as MLSD_AD_CLICK_<FIELD> (`./dev.sh settings ad_click` lists them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from assets.case import InvalidSetting, check_parses
from models.drift import SimulatedDrift
from models.windows import WindowSize, parse_duration

DRIFT_KINDS = ("covariate", "concept")
CANDIDATES = ("xgboost", "deepfm", "dcn")


@dataclass(frozen=True)
class AdClickSettings:
    raw_dir: str | None = None  # parquet files of your own; None runs the simulator
    start_date: date | None = None  # None: your files' first day, or 2026-01-01 for the simulator
    days: int | None = None  # None: through your files' last day, or 28 simulated days
    seed: int = 7
    users: int = 20_000
    ads: int = 1_500
    advertisers: int = 150
    impressions_per_day: int = 60_000
    warmup_days: int = 7  # or half the days before validation, when these would leave no day to train on
    # How much the validation and test windows hold, at least (whole days back from the end): "4d", "12%" of the
    # impressions, "300users", or several together. On the simulator's 28 even days: 3 and 4 days.
    validation_window: str = "10%"
    test_window: str = "12%"
    drift: str = "none"  # simulator only: covariate@DAY or concept@DAY (0-based day the drift starts)
    # The models the training job trains; the one with the lowest validation log loss becomes the challenger.
    candidates: str = "xgboost,deepfm,dcn"
    # With the optional raw column click_ts, the label is a click within this long after the impression (900s,
    # 30m, 1h, 2d), and training uses only impressions whose window had closed by the end of the newest day.
    click_window: str = "1h"

    def __post_init__(self):
        check_parses(self, drift=lambda value: SimulatedDrift.parse(value, DRIFT_KINDS, None))
        for name in ("users", "ads", "advertisers", "impressions_per_day"):
            if getattr(self, name) < 1:
                raise InvalidSetting(name, "must be at least 1")
        check_parses(self, validation_window=WindowSize.parse, test_window=WindowSize.parse)
        names = [n.strip() for n in self.candidates.split(",") if n.strip()]
        if not names or len(set(names)) != len(names) or set(names) - set(CANDIDATES):
            raise InvalidSetting("candidates", f"a comma-separated choice of {', '.join(CANDIDATES)} (each once), "
                                 f"not {self.candidates!r}")
        check_parses(self, click_window=parse_duration)
        if self.days is not None and self.days < 1:
            raise InvalidSetting("days", "must be at least 1")
        if self.warmup_days < 0:
            raise InvalidSetting("warmup_days", "must be 0 or more")

    @property
    def candidate_models(self) -> tuple[str, ...]:
        return tuple(n.strip() for n in self.candidates.split(",") if n.strip())

    @property
    def simulated_drift(self) -> SimulatedDrift:
        return SimulatedDrift.parse(self.drift, DRIFT_KINDS, None)
