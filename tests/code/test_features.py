from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from models.ad_click.features import (
    FEATURE_COLUMNS,
    FEATURE_SCHEMA,
    PRIOR_CTR,
    PRIOR_STRENGTH,
    point_in_time_features,
)

T0 = datetime(2026, 1, 8, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def world_features(small_world):
    return point_in_time_features(small_world.impressions, small_world.users, small_world.ads)


def test_schema_is_the_declared_one(world_features):
    assert dict(world_features.schema) == FEATURE_SCHEMA


def _brute_force(events: pl.DataFrame, row: dict, keys: list[str], window: timedelta) -> tuple[int, int]:
    mask = pl.lit(True)
    for key in keys:
        mask = mask & (pl.col(key) == row[key])
    history = events.filter(mask & (pl.col("ts") >= row["ts"] - window) & (pl.col("ts") < row["ts"]))
    return history.height, int(history["clicked"].sum())


@pytest.mark.parametrize(
    "entity,keys,window",
    [
        ("user", ["user_id"], timedelta(hours=1)),
        ("user", ["user_id"], timedelta(days=7)),
        ("ad", ["ad_id"], timedelta(days=1)),
        ("advertiser", ["advertiser_id"], timedelta(hours=1)),
        ("user_category", ["user_id", "category"], timedelta(days=7)),
        ("gender_category", ["gender", "category"], timedelta(days=1)),
    ],
)
def test_aggregates_equal_a_brute_force_count_of_strictly_earlier_events(small_world, world_features, entity, keys, window):
    events = small_world.impressions.join(small_world.ads, on="ad_id").join(small_world.users, on="user_id")
    name = {timedelta(hours=1): "1h", timedelta(days=1): "1d", timedelta(days=7): "7d"}[window]
    sample = world_features.join(events.select("impression_id", "category", "gender"), on="impression_id").sample(
        40, seed=1
    )
    for row in sample.iter_rows(named=True):
        n, clicks = _brute_force(events, row, keys, window)
        assert row[f"{entity}_impressions_{name}"] == n
        assert row[f"{entity}_clicks_{name}"] == clicks
        assert row[f"{entity}_ctr_{name}"] == pytest.approx((clicks + PRIOR_STRENGTH * PRIOR_CTR) / (n + PRIOR_STRENGTH))


def _tiny_world():
    users = pl.DataFrame(
        {"user_id": ["u1", "u2"], "age": [30, 50], "gender": ["female", "male"], "country": ["US", "DE"],
         "signup_ts": [T0 - timedelta(days=30)] * 2}
    )
    ads = pl.DataFrame(
        {"ad_id": ["a1", "a2"], "advertiser_id": ["v1", "v1"], "category": ["books", "games"],
         "created_ts": [T0 - timedelta(days=10)] * 2}
    )
    rows = [
        ("i1", T0 - timedelta(hours=30), "u1", "a1", 1),
        ("i2", T0 - timedelta(minutes=30), "u1", "a1", 0),
        ("i3", T0, "u1", "a1", 0),  # the impression under test
        ("i4", T0, "u1", "a2", 1),  # same instant: not strictly before, must not count
        ("i5", T0 + timedelta(minutes=5), "u1", "a1", 1),
        ("i6", T0 + timedelta(hours=2), "u2", "a1", 1),
    ]
    impressions = pl.DataFrame(
        {"impression_id": [r[0] for r in rows], "ts": [r[1] for r in rows], "user_id": [r[2] for r in rows],
         "ad_id": [r[3] for r in rows], "position": [1] * len(rows), "device": ["mobile"] * len(rows),
         "clicked": [r[4] for r in rows]}
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    return impressions, users, ads


def _row(features: pl.DataFrame, impression_id: str) -> dict:
    return features.filter(pl.col("impression_id") == impression_id).row(0, named=True)


def test_exact_values_for_a_hand_built_history():
    impressions, users, ads = _tiny_world()
    row = _row(point_in_time_features(impressions, users, ads), "i3")
    assert (row["user_impressions_1h"], row["user_clicks_1h"]) == (1, 0)
    assert (row["user_impressions_7d"], row["user_clicks_7d"]) == (2, 1)
    assert row["user_ad_impressions_7d"] == 2
    assert row["seconds_since_user_saw_ad"] == pytest.approx(1800)
    assert row["history_asof_ts"] == T0 - timedelta(minutes=30)
    assert row["ad_age_days"] == pytest.approx(10) and row["user_tenure_days"] == pytest.approx(30)


def test_changing_events_after_an_impression_does_not_move_its_features():
    impressions, users, ads = _tiny_world()
    before = _row(point_in_time_features(impressions, users, ads), "i3")
    later = pl.col("ts") >= T0
    changed = impressions.with_columns(
        # Flip the label of every event at or after the impression (its own included), and add a burst of
        # future events for the same user and ad.
        clicked=pl.when(later).then(1 - pl.col("clicked")).otherwise(pl.col("clicked")),
    )
    burst = impressions.filter(pl.col("impression_id") == "i5").with_columns(
        impression_id=pl.lit("i9"), ts=pl.col("ts") + timedelta(seconds=1)
    )
    after = _row(point_in_time_features(pl.concat([changed, burst]), users, ads), "i3")
    assert {k: after[k] for k in FEATURE_COLUMNS} == {k: before[k] for k in FEATURE_COLUMNS}


def test_changing_a_past_event_does_move_the_features():
    impressions, users, ads = _tiny_world()
    before = _row(point_in_time_features(impressions, users, ads), "i3")
    changed = impressions.with_columns(clicked=pl.when(pl.col("impression_id") == "i2").then(1).otherwise(pl.col("clicked")))
    after = _row(point_in_time_features(changed, users, ads), "i3")
    assert after["user_clicks_1h"] == before["user_clicks_1h"] + 1


def test_targets_from_keeps_history_out_of_the_output_but_in_the_aggregates():
    impressions, users, ads = _tiny_world()
    full = point_in_time_features(impressions, users, ads)
    targets = point_in_time_features(impressions, users, ads, targets_from=T0)
    assert set(targets["impression_id"]) == {"i3", "i4", "i5", "i6"}
    assert targets.equals(full.filter(pl.col("ts") >= T0))
