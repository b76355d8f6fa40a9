"""Features assembled online from a published snapshot equal the offline point-in-time features of the same moment."""

from datetime import datetime, timezone

import polars as pl
import pytest

from models.ad_click.features import FEATURE_COLUMNS, ID_COLUMNS, online_snapshot, point_in_time_features
from models.ad_click.serving import fetch_features, publish_snapshot

AS_OF = datetime(2026, 1, 8, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def requests_at_as_of(small_world):
    """Sampled (user, ad, slot, device) of day 8, asked at the snapshot's moment."""
    day8 = small_world.impressions.filter(pl.col("ts") >= AS_OF)
    sample = day8.sample(300, seed=3)
    return sample.select("user_id", "ad_id", "position", "device").with_columns(
        ts=pl.lit(AS_OF).cast(pl.Datetime("us", "UTC"))
    )


def test_online_features_equal_offline_point_in_time_features(small_world, requests_at_as_of, online_store):
    history = small_world.impressions.filter(pl.col("ts") < AS_OF)
    publish_snapshot(online_store, online_snapshot(history, small_world.users, small_world.ads, AS_OF), AS_OF)
    online, fallbacks = fetch_features(online_store, requests_at_as_of.select("user_id", "ad_id", "ts", "position", "device"))
    assert fallbacks == []

    # Offline: the same requests as impressions at AS_OF, their features computed point-in-time.
    synthetic = requests_at_as_of.with_columns(
        impression_id=pl.format("req{}", pl.int_range(pl.len())), clicked=pl.lit(0, pl.Int64),
        click_ts=pl.lit(None, pl.Datetime("us", "UTC")),
    ).select(history.columns)
    offline = point_in_time_features(pl.concat([history, synthetic]), small_world.users, small_world.ads, targets_from=AS_OF)
    # The ids too: a network champion embeds them.
    offline = offline.sort(pl.col("impression_id").str.slice(3).cast(pl.Int64)).select(*ID_COLUMNS, *FEATURE_COLUMNS)

    assert online.schema == offline.schema
    for column in offline.columns:
        assert online[column].to_list() == offline[column].to_list(), column


def test_unknown_entities_fall_back_and_say_so(small_world, requests_at_as_of, online_store):
    history = small_world.impressions.filter(pl.col("ts") < AS_OF)
    publish_snapshot(online_store, online_snapshot(history, small_world.users, small_world.ads, AS_OF), AS_OF)
    requests = requests_at_as_of.head(2).with_columns(user_id=pl.Series(["nobody", "nobody"]), ad_id=pl.Series(["ad000001", "no-ad"]))
    features, fallbacks = fetch_features(online_store, requests.select("user_id", "ad_id", "ts", "position", "device"))
    assert any("unknown user nobody" in f for f in fallbacks) and any("unknown ad no-ad" in f for f in fallbacks)
    row = features.row(1, named=True)
    assert row["user_impressions_7d"] == 0 and row["gender"] is None and row["category"] is None


def test_empty_store_serves_cold_start_features(small_world, requests_at_as_of, online_store):
    features, fallbacks = fetch_features(online_store, requests_at_as_of.head(3).select("user_id", "ad_id", "ts", "position", "device"))
    assert features.height == 3
    assert "no snapshot" in fallbacks[0]
