"""People you may know's own resources: its raw-data source, its snapshots, its models' training and its batch."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import dagster as dg
import polars as pl

from assets.resources import RawSource


class PeopleYouMayKnowSource(RawSource):
    """Raw data: the seeded simulator, or your parquet files in `raw_dir` (users, connections, requests,
    profile_views; README "People you may know")."""

    tables: ClassVar[tuple[str, ...]] = ("users", "connections", "requests", "profile_views", "user_truth",
                                         "interest_truth")
    seed: int = 61
    users: int = 3_000
    drift_kind: str = "none"
    drift_day: int = 0

    def simulation_config(self):
        from models.people_you_may_know.simulator import SimulationConfig

        return SimulationConfig(seed=self.seed, start_date=date.fromisoformat(self.start_date), n_days=self.days,
                                users=self.users, drift_kind=self.drift_kind, drift_day=self.drift_day)

    def fingerprint(self) -> str:
        return self.simulation_config().fingerprint()

    def simulate(self):
        from models.people_you_may_know.simulator import simulate

        return simulate(self.simulation_config())

    def truth(self) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        """The generator's (user truth, interest truth), or None for your data."""
        if not self.has_oracle:
            return None
        return self.table("user_truth"), self.table("interest_truth")


class PeopleYouMayKnowSplit(dg.ConfigurableResource):
    """Three label windows of `label_days` end the data; friends of friends are capped at `candidate_cap` a member."""

    label_days: int = 7
    candidate_cap: int = 200

    def cutoffs(self, connections: pl.DataFrame):
        from models.people_you_may_know.training import Cutoffs

        return Cutoffs.from_connections(connections, self.label_days)


class PeopleYouMayKnowTraining(dg.ConfigurableResource):
    dim: int = 64
    epochs: int = 12


class PeopleYouMayKnowBatch(dg.ConfigurableResource):
    suggestions: int = 20
    active_days: int = 28
