from dataclasses import replace

import pytest

import polars as pl

from expectations.ad_click import ADS_SCHEMA, IMPRESSIONS_SCHEMA, OPTIONAL_IMPRESSION_COLUMNS, USERS_SCHEMA
from models.ad_click.simulator import SimulationConfig, simulate

TINY = SimulationConfig(n_days=3, n_users=300, n_ads=40, n_advertisers=8, impressions_per_day=2_000)


def test_same_seed_same_world_to_the_last_row():
    first, second = simulate(TINY), simulate(TINY)
    for table in ("users", "ads", "impressions", "oracle"):
        assert getattr(first, table).equals(getattr(second, table)), table


def test_another_seed_another_world():
    assert not simulate(TINY).impressions.equals(simulate(replace(TINY, seed=8)).impressions)


def test_tables_follow_the_raw_input_contract(small_world):
    assert dict(small_world.impressions.schema) == {**IMPRESSIONS_SCHEMA, **OPTIONAL_IMPRESSION_COLUMNS}
    assert dict(small_world.users.schema) == USERS_SCHEMA
    assert dict(small_world.ads.schema) == ADS_SCHEMA


def test_click_rate_matches_the_configured_base_rate_and_the_oracle(small_world):
    first_day = small_world.oracle.filter(pl.col("ts").dt.day() == 1)
    assert abs(first_day["p_click"].mean() - 0.03) < 1e-3
    assert 0.02 < small_world.oracle["p_click"].mean() < 0.035
    assert abs(small_world.impressions["clicked"].mean() - small_world.oracle["p_click"].mean()) < 0.005


def test_clicks_follow_the_oracle_probabilities(small_world):
    joined = small_world.impressions.join(small_world.oracle, on="impression_id")
    by_bin = joined.group_by(pl.col("p_click").qcut(4, labels=["q1", "q2", "q3", "q4"]).alias("q")).agg(
        ctr=pl.col("clicked").mean(), p=pl.col("p_click").mean()
    ).sort("q")
    # The highest-probability quarter clicks far more than the lowest, and each bin's rate is near its mean p.
    assert by_bin["ctr"][-1] > 2 * by_bin["ctr"][0]
    assert ((by_bin["ctr"] - by_bin["p"]).abs() < 0.012).all()


def test_position_bias_and_fatigue_lower_the_true_probability(small_world):
    joined = small_world.impressions.join(small_world.oracle, on="impression_id")
    by_position = joined.group_by("position").agg(pl.col("p_click").mean()).sort("position")["p_click"]
    assert by_position[0] > by_position[3]
    repeat = joined.with_columns(n=pl.int_range(pl.len()).over("user_id", "ad_id"))
    first_view = repeat.filter(pl.col("n") == 0)["p_click"].mean()
    later_view = repeat.filter(pl.col("n") >= 2)["p_click"].mean()
    assert later_view < first_view


def test_entities_exist_before_their_impressions(small_world):
    joined = small_world.impressions.join(small_world.users, on="user_id").join(small_world.ads, on="ad_id")
    assert joined.height == small_world.impressions.height
    assert (joined["signup_ts"] < joined["ts"]).all()
    assert (joined["created_ts"] < joined["ts"]).all()


DRIFT_BASE = SimulationConfig(n_days=6, n_users=600, n_ads=60, n_advertisers=8, impressions_per_day=3_000)


@pytest.mark.parametrize("kind", ["covariate", "concept"])
def test_days_before_drift_are_identical_to_the_world_without_drift(kind):
    stable = simulate(DRIFT_BASE)
    drifted = simulate(replace(DRIFT_BASE, drift_kind=kind, drift_day=3))
    cutoff = pl.col("ts") < pl.datetime(2026, 1, 4, time_zone="UTC")
    assert drifted.impressions.filter(cutoff).equals(stable.impressions.filter(cutoff))
    assert drifted.oracle.filter(cutoff).equals(stable.oracle.filter(cutoff))


def test_covariate_drift_brings_a_new_market_and_a_new_device_mix():
    world = simulate(replace(DRIFT_BASE, drift_kind="covariate", drift_day=3))
    joined = world.impressions.join(world.users, on="user_id").with_columns(after=pl.col("ts").dt.day() >= 4)
    share = joined.group_by("after").agg(
        ng=(pl.col("country") == "NG").mean(), tablet=(pl.col("device") == "tablet").mean()
    ).sort("after")
    assert share["ng"][0] == 0 and share["ng"][1] > 0.1
    assert share["tablet"][1] > 2 * share["tablet"][0]


def test_concept_drift_changes_click_probabilities_not_traffic():
    stable = simulate(DRIFT_BASE)
    drifted = simulate(replace(DRIFT_BASE, drift_kind="concept", drift_day=3))
    assert drifted.impressions.drop("clicked", "click_ts").equals(stable.impressions.drop("clicked", "click_ts"))
    after = pl.col("ts") >= pl.datetime(2026, 1, 4, time_zone="UTC")
    change = (drifted.oracle.filter(after)["p_click"] - stable.oracle.filter(after)["p_click"]).abs().mean()
    assert change > 0.005


def test_drift_settings_are_validated():
    with pytest.raises(ValueError, match="drift_kind"):
        SimulationConfig(drift_kind="sideways")
    with pytest.raises(ValueError, match="drift_day"):
        SimulationConfig(n_days=5, drift_kind="concept", drift_day=9)


def test_clicks_come_a_delay_after_their_impression_and_the_oracle_is_of_a_click_within_the_window(small_world):
    import numpy as np

    from models.ad_click.simulator import click_delay_cdf

    impressions = small_world.impressions
    clicked = impressions.filter(pl.col("clicked") == 1)
    assert impressions.filter(pl.col("clicked") == 0)["click_ts"].null_count() == impressions.height - clicked.height
    delay = (clicked["click_ts"] - clicked["ts"]).dt.total_seconds(fractional=True)
    assert delay.min() > 0 and 10 < delay.median() < 90  # the configured median is 30 s
    late = float((delay > 3600).mean())
    assert abs(late - (1 - click_delay_cdf(3600))) < 0.005
    # The label window moves the oracle by the share of clicks within it, and nothing else.
    hour, day = simulate(TINY), simulate(replace(TINY, click_window_s=86_400))
    assert hour.impressions.equals(day.impressions)
    ratio = (hour.oracle["p_click"] / day.oracle["p_click"]).to_numpy()
    assert np.allclose(ratio, click_delay_cdf(3600) / click_delay_cdf(86_400))
