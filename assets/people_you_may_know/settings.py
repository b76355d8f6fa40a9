"""People you may know's settings: every field is settable as MLSD_PEOPLE_YOU_MAY_KNOW_<FIELD>
(`./dev.sh settings people_you_may_know`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from assets.case import InvalidSetting, check_parses
from models.drift import SimulatedDrift
from models.people_you_may_know.simulator import DRIFT_KINDS


@dataclass(frozen=True)
class PeopleYouMayKnowSettings:
    raw_dir: str | None = None  # parquet files of your own (users, connections, requests, profile_views); None simulates
    start_date: date = date(2026, 1, 5)  # simulator only: your files' dates are used as they are
    days: int = 56  # simulator only
    seed: int = 61
    users: int = 3_000  # simulator only
    # Each of the three label windows at the end of the data (training, validation, test): a snapshot is the graph
    # before a window, its labels the connections made in it.
    label_days: int = 7
    candidate_cap: int = 200  # friends of friends scored per member, most mutual friends first
    suggestions: int = 20  # per member, written by the batch
    active_days: int = 28  # the batch suggests for members active in these days before the snapshot
    dim: int = 64  # GraphSAGE's member vectors
    epochs: int = 12  # at most: validation mAP@10 picks the best
    drift: str = "none"  # simulator only: campus@DAY or spam@DAY (0-based day it starts)

    def __post_init__(self):
        for name in ("days", "users", "label_days", "candidate_cap", "suggestions", "active_days", "dim", "epochs"):
            if getattr(self, name) < 1:
                raise InvalidSetting(name, "must be at least 1")
        if self.suggestions > 100:
            raise InvalidSetting("suggestions", "must be at most 100")
        if self.raw_dir is None and self.days < 3 * self.label_days + 1:
            raise InvalidSetting("days", f"the simulator needs more than three label windows of {self.label_days} days")
        check_parses(self, drift=lambda value: SimulatedDrift.parse(value, DRIFT_KINDS, self.days))

    @property
    def simulated_drift(self) -> SimulatedDrift:
        return SimulatedDrift.parse(self.drift, DRIFT_KINDS, self.days)
