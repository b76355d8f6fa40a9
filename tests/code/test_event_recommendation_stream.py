"""Event recommendation's real-time registrations: interactions replayed through a real Redis stream after the
snapshot, counted once however often they are delivered, and brought into the service's ranking."""

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from assets.event_recommendation.streaming import event_recommendation_stream_consumer_job
from assets.resources import EventStream
from models.event_recommendation.online import snapshot_records
from models.event_recommendation.service_model import Recommender
from models.event_recommendation.simulator import SimulationConfig, simulate
from models.event_recommendation.stream import LiveRegistrations, consume, publish
from models.online_store import SqliteOnlineStore


@pytest.fixture(scope="module")
def world():
    return simulate(SimulationConfig(n_days=10, n_users=800, events_per_day=15, sessions_per_day=200))


@pytest.fixture
def names(request):
    name = request.node.name.replace("[", "-").replace("]", "")
    return {"stream": f"test:{name}:events", "namespace": f"test:{name}:rt"}


def _after(world, as_of, hours):
    return world.interactions.filter((pl.col("ts") >= as_of) & (pl.col("ts") < as_of + timedelta(hours=hours)))


def test_live_registrations_count_each_registration_once(world, redis_url, names):
    as_of = world.interactions["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    replayed = _after(world, as_of, 12)
    publish(redis_url, replayed, stream=names["stream"])
    publish(redis_url, replayed.filter(pl.col("kind") == "register"), stream=names["stream"])  # delivered twice
    handled = consume(redis_url, until_idle=0.5, **names)
    assert handled == replayed.height + replayed.filter(pl.col("kind") == "register").height
    expected = replayed.filter(pl.col("kind") == "register").group_by("event_id").len()
    live = LiveRegistrations(redis_url, names["namespace"])
    counts = live.counts(expected["event_id"].to_list(), int(as_of.timestamp() * 1e6),
                         int((as_of + timedelta(hours=12)).timestamp() * 1e6))
    assert counts == expected["len"].to_list() and sum(counts) > 0
    assert live.counts(expected["event_id"].to_list(), 0, int(as_of.timestamp() * 1e6)) == [0] * expected.height
    live.close()


def test_the_service_adds_the_streams_registrations_to_the_snapshots(world, redis_url, names, tmp_path):
    as_of = world.interactions["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    vectors = np.zeros((world.events.height, 8), dtype=np.float32)
    store = SqliteOnlineStore(tmp_path / "online.db", "event_recommendation")
    store.publish(snapshot_records(world.users, world.events, world.friendships, world.interactions, vectors, as_of),
                  "test", as_of.isoformat())
    later = _after(world, as_of, 12)
    publish(redis_url, later, stream=names["stream"])
    consume(redis_url, until_idle=0.5, **names)

    class Popularity:  # ranks by the registrations-so-far feature the service built
        kind = "stub"

        def predict(self, matrix):
            from models.event_recommendation.features import FEATURES

            return matrix[:, FEATURES.index("registrations_so_far")]

    live = LiveRegistrations(redis_url, names["namespace"])
    ts = as_of + timedelta(hours=12)
    user = world.users["user_id"][0]
    with_stream = Recommender(Popularity(), store, radius_km=500, max_candidates=10_000, live_registrations=live)
    without = Recommender(Popularity(), store, radius_km=500, max_candidates=10_000)
    fresh, stale = with_stream.recommend(user, k=500, ts=ts), without.recommend(user, k=500, ts=ts)
    new = later.filter(pl.col("kind") == "register").group_by("event_id").len()
    added = dict(new.iter_rows())
    before = {e["event_id"]: e["score"] for e in stale.events}
    changed = [e for e in fresh.events if e["event_id"] in added and e["event_id"] in before]
    assert changed and all(e["score"] == before[e["event_id"]] + added[e["event_id"]] for e in changed)
    assert any("from the stream" in note for note in fresh.notes) and not stale.notes
    live.close()


def test_the_dagster_consumer_job_drains_the_stream(world, redis_url):
    events = world.interactions.head(400)
    publish(redis_url, events)
    result = event_recommendation_stream_consumer_job.execute_in_process(
        resources={"event_recommendation_stream": EventStream(url=redis_url)},
        run_config={"ops": {"consume_event_interactions": {"config": {"until_idle_seconds": 0.5}}}},
    )
    assert result.success and result.output_for_node("consume_event_interactions") == 400


def test_the_service_answers_the_same_from_either_online_store_backend(world, online_store, tmp_path):
    """The snapshot published to the parametrized backend (SQLite, Redis) serves the same answer as one in SQLite."""
    as_of = world.interactions["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0)
    vectors = np.random.default_rng(0).normal(size=(world.events.height, 8)).astype(np.float32)
    reference = SqliteOnlineStore(tmp_path / "reference.db", "event_recommendation")
    for store in (online_store, reference):
        store.publish(snapshot_records(world.users, world.events, world.friendships, world.interactions, vectors, as_of),
                      "test", as_of.isoformat())

    class Registrations:  # any fixed function of the features: the two answers must match to the bit
        kind = "stub"

        def predict(self, matrix):
            return np.nan_to_num(matrix).sum(axis=1)

    users = world.users["user_id"].head(5).to_list()
    ts = as_of + timedelta(hours=2)
    answers = [[Recommender(Registrations(), store).recommend(u, k=10, ts=ts) for u in users]
               for store in (online_store, reference)]
    for mine, theirs in zip(*answers):
        assert mine.events == theirs.events and mine.filters == theirs.filters and mine.events
