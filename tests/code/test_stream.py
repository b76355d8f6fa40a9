"""Streaming: replay a day through a real Redis stream; live aggregates equal the batch features; crashes lose nothing."""

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from models.ad_click.features import online_snapshot, point_in_time_features
from models.ad_click.serving import fetch_features, publish_snapshot
from models.ad_click.stream import RealtimeAggregates, consume, publish

DAY = datetime(2026, 1, 8, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stream_names(request):
    name = request.node.name.replace("[", "-").replace("]", "")
    return {"stream": f"test:{name}:events", "namespace": f"test:{name}:rt"}


def _day(world, day=DAY):
    return world.impressions.filter(pl.col("ts").dt.date() == day.date())


def test_live_aggregates_equal_the_batch_features_of_the_same_moment(small_world, redis_url, tmp_path, stream_names):
    # The day and the hour before it, so every window of the day is complete.
    replayed = small_world.impressions.filter(
        (pl.col("ts") >= DAY - timedelta(hours=1)) & (pl.col("ts") < DAY + timedelta(days=1))
    )
    publish(redis_url, replayed, stream=stream_names["stream"])
    handled = consume(redis_url, lake_dir=str(tmp_path / "lake"), until_idle=0.5, **stream_names)
    assert handled == replayed.height

    offline = point_in_time_features(small_world.impressions.filter(pl.col("ts") < DAY + timedelta(days=1)),
                                     small_world.users, small_world.ads, targets_from=DAY)
    # Live aggregates serve "now": compare the impressions of the replay's last hour (older members are trimmed).
    sample = offline.filter(pl.col("ts") >= DAY + timedelta(hours=23))
    live = RealtimeAggregates(redis_url, stream_names["namespace"])
    ts = sample["ts"].dt.epoch("us").to_list()
    for entity, column in (("user", "user_id"), ("ad", "ad_id")):
        counts = live.counts(entity, sample[column].to_list(), ts)
        assert [n for n, _ in counts] == sample[f"{entity}_impressions_1h"].to_list()
        assert [c for _, c in counts] == sample[f"{entity}_clicks_1h"].to_list()
    live.close()

    # The same events landed in the lake: exactly the replayed impressions.
    landed = pl.read_parquet(tmp_path / "lake" / "*.parquet").sort("ts", "impression_id")
    assert landed.equals(replayed.sort("ts", "impression_id"))


def test_serving_uses_live_counts_over_the_snapshot(small_world, redis_url, online_store, stream_names):
    history = small_world.impressions.filter(pl.col("ts") < DAY)
    publish_snapshot(online_store, online_snapshot(history, small_world.users, small_world.ads, DAY), DAY)
    publish(redis_url, _day(small_world), stream=stream_names["stream"])
    consume(redis_url, until_idle=0.5, **stream_names)
    moment = datetime(2026, 1, 8, 23, 30, tzinfo=timezone.utc)
    offline = point_in_time_features(small_world.impressions, small_world.users, small_world.ads, targets_from=DAY)
    row = offline.filter((pl.col("ts") >= moment)).row(0, named=True)
    request = pl.DataFrame({"user_id": [row["user_id"]], "ad_id": [row["ad_id"]], "ts": [row["ts"]],
                            "position": [row["position"]], "device": [row["device"]]})
    live = RealtimeAggregates(redis_url, stream_names["namespace"])
    features, _ = fetch_features(online_store, request, realtime=live)
    live.close()
    for column in ("user_impressions_1h", "user_clicks_1h", "ad_impressions_1h", "ad_clicks_1h", "ad_ctr_1h"):
        assert features[column][0] == row[column], column


def test_an_event_is_counted_within_a_second(small_world, redis_url, stream_names):
    import threading

    consumer = threading.Thread(target=consume, kwargs={"url": redis_url, "until_idle": 3, **stream_names})
    consumer.start()
    time.sleep(0.5)
    event = _day(small_world).head(1)
    published = time.monotonic()
    publish(redis_url, event, stream=stream_names["stream"])
    live = RealtimeAggregates(redis_url, stream_names["namespace"])
    after = [event["ts"].dt.epoch("us")[0] + 1]
    while live.counts("ad", [event["ad_id"][0]], after)[0][0] == 0:
        assert time.monotonic() - published < 1.0, "not counted within a second"
        time.sleep(0.01)
    latency = time.monotonic() - published
    live.close()
    consumer.join()
    assert latency < 1.0


def test_killing_the_consumer_mid_stream_loses_and_double_counts_nothing(small_world, redis_url, tmp_path, stream_names):
    events = _day(small_world)
    publish(redis_url, events, stream=stream_names["stream"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = (
        "import sys, os, signal\n"
        "from models.ad_click.stream import consume\n"
        "def crash(n):  # after the 10th batch's lake file, before its acknowledgement\n"
        "    if n >= 1000: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"consume({redis_url!r}, lake_dir={str(tmp_path / 'lake')!r}, batch_size=100, on_batch=crash,"
        f" stream={stream_names['stream']!r}, namespace={stream_names['namespace']!r})\n"
    )
    killed = subprocess.run([sys.executable, "-c", code], env=env, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    # Restart: the same consumer name picks up what it had not acknowledged, then the rest.
    handled = consume(redis_url, lake_dir=str(tmp_path / "lake"), until_idle=0.5, batch_size=100, **stream_names)
    assert handled == events.height - 900  # the unacknowledged 10th batch again, then the rest

    live = RealtimeAggregates(redis_url, stream_names["namespace"])
    end = [int((DAY + timedelta(days=1)).timestamp() * 1e6)]
    for entity, column in (("user", "user_id"), ("ad", "ad_id")):
        expected = events.filter(pl.col("ts") >= datetime(2026, 1, 8, 23, tzinfo=timezone.utc)).group_by(column).agg(
            n=pl.len(), c=pl.col("clicked").sum()
        )
        ids = expected[column].to_list()
        counts = live.counts(entity, ids, end * len(ids))
        assert [n for n, _ in counts] == expected["n"].to_list()
        assert [c for _, c in counts] == expected["c"].to_list()
    live.close()
    landed = pl.read_parquet(tmp_path / "lake" / "*.parquet")
    assert set(landed["impression_id"]) == set(events["impression_id"])  # nothing lost
    assert landed.unique("impression_id").height == events.height
