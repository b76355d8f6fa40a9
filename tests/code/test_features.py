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
    # A click counts from the moment it happened (the simulator's clicks come a delay after their impression).
    clicks = events.filter(mask & (pl.col("click_ts") >= row["ts"] - window) & (pl.col("click_ts") < row["ts"]))
    return history.height, clicks.height


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


def _with_click_times(impressions: pl.DataFrame, delays: dict[str, timedelta]) -> pl.DataFrame:
    """The tiny world's clicks given click times: each clicked impression `delays[id]` later (default 10 s)."""
    utc = pl.Datetime("us", "UTC")
    return impressions.with_columns(
        click_ts=pl.when(pl.col("clicked") == 1)
        .then(pl.col("ts") + pl.col("impression_id").replace_strict(
            {k: v for k, v in delays.items()}, default=timedelta(seconds=10), return_dtype=pl.Duration("us")))
        .cast(utc)
    )


def test_a_late_click_is_not_seen_before_it_happens_and_the_label_is_a_click_within_the_window():
    impressions, users, ads = _tiny_world()
    # i1 (30 h before T0) was clicked 29.5 h later, half an hour before T0: i3 sees it in its last hour.
    # i5 (T0 + 5 min) is clicked 3 hours later: after the 1-hour window, so its label is 0, and i6 (T0 + 2 h)
    # does not see that click yet.
    late = _with_click_times(impressions, {"i1": timedelta(hours=29, minutes=30), "i5": timedelta(hours=3)})
    features = point_in_time_features(late, users, ads)
    i3, i5, i6 = _row(features, "i3"), _row(features, "i5"), _row(features, "i6")
    assert (i3["user_clicks_1h"], i3["user_clicks_1d"]) == (1, 1)  # the click came at T0 - 30 min
    assert i5["clicked"] == 0  # clicked, but 3 h after the impression: outside the 1-hour window
    assert i6["ad_clicks_7d"] == 1  # i1's click; i5's comes an hour after i6
    instant = point_in_time_features(impressions, users, ads)  # without click_ts: clicks known at impression time
    assert _row(instant, "i3")["user_clicks_1h"] == 0 and _row(instant, "i5")["clicked"] == 1
    assert _row(instant, "i6")["ad_clicks_7d"] == 2
    wider = point_in_time_features(late, users, ads, click_window=timedelta(hours=4))
    assert _row(wider, "i5")["clicked"] == 1


def test_online_snapshot_knows_only_the_clicks_that_happened_before_it():
    from models.ad_click.features import online_snapshot

    impressions, users, ads = _tiny_world()
    late = _with_click_times(impressions, {"i4": timedelta(minutes=20)})
    before, after = (online_snapshot(late, users, ads, T0 + offset)["user"] for offset in (timedelta(minutes=10), timedelta(minutes=30)))
    u1 = pl.col("user_id") == "u1"
    assert before.filter(u1)["user_clicks_1h"][0] == 1  # i5's (T0 + 5 min 10 s); i4's comes at T0 + 20 min
    assert after.filter(u1)["user_clicks_1h"][0] == 2


def test_training_keeps_only_labels_whose_click_window_had_closed_when_the_newest_day_is_in():
    from types import SimpleNamespace

    from assets.ad_click.training import matured

    impressions, users, ads = _tiny_world()
    features = point_in_time_features(_with_click_times(impressions, {}), users, ads)
    newest_day_ends = datetime(2026, 1, 9, tzinfo=timezone.utc)
    with_click_times = SimpleNamespace(has_click_times=lambda: True, click_window=newest_day_ends - T0 - timedelta(hours=1))
    kept, dropped = matured(features, with_click_times)
    # A window of 23 h closes by the day's end only for the impressions of its first hour (T0 and T0 + 5 min).
    assert set(kept["impression_id"]) == {"i1", "i2", "i3", "i4", "i5"} and dropped == 1
    instant = SimpleNamespace(has_click_times=lambda: False, click_window=timedelta(hours=1))
    assert matured(features, instant) == (features, 0)  # labels known at ingestion: nothing waits


@pytest.mark.parametrize("field_name, value", [("click_window", "soon"), ("click_window", "0h"),
                                               ("candidates", "xgboost,gbdt"), ("candidates", "dcn,dcn"),
                                               ("candidates", "")])
def test_ad_click_settings_name_the_field_they_refuse(field_name, value):
    from assets.ad_click.settings import AdClickSettings
    from assets.case import InvalidSetting

    with pytest.raises(InvalidSetting) as error:
        AdClickSettings(**{field_name: value})
    assert error.value.field_name == field_name
