"""The mid-size simulation the model tests share: one world, featurized and split by time once per session."""

import polars as pl
import pytest

from models.ad_click.features import point_in_time_features
from models.ad_click.simulator import SimulationConfig, simulate
from models.ad_click.train import TimeSplit


@pytest.fixture(scope="session")
def ad_click_splits():
    """(train, validation, test) of 12 simulated days, each row with the oracle's `p_click`."""
    world = simulate(SimulationConfig(n_days=12, n_users=3_000, n_ads=200, n_advertisers=30, impressions_per_day=10_000))
    features = point_in_time_features(world.impressions, world.users, world.ads)
    labelled = TimeSplit(warmup_days=3, validation="2d", test="2d").assign(features)
    labelled = labelled.join(world.oracle.select("impression_id", "p_click"), on="impression_id")
    return tuple(labelled.filter(pl.col("split") == s) for s in ("train", "validation", "test"))
