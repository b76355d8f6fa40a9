"""Event recommendation's raw-input contract: each kind of defect in users, events, friendships and interactions,
and what its policy does."""

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from expectations import event_recommendation as suites
from expectations.runner import policy_markdown, run_suite
from models.event_recommendation.simulator import SimulationConfig, simulate
from tests.data.defects import check_policy, spread


@pytest.fixture(scope="module")
def world():
    return simulate(SimulationConfig(n_days=8, n_users=500, events_per_day=10, sessions_per_day=120))


def _interactions_frame(world, interactions=None):
    """The interactions as the raw asset validates them: with the event's created_ts joined on."""
    interactions = world.interactions if interactions is None else interactions
    return interactions.join(world.events.select("event_id", "created_ts"), on="event_id", how="left", maintain_order="left")


def _first_invites(n: int):
    """The first n invitations (the only interactions with an invitee)."""
    invite = pl.col("kind") == "invite"
    return invite & (invite.cum_sum() <= n)


USER_DEFECTS = {
    # defect: (inject, column named by the report, policy)
    "missing column": (lambda f: f.drop("lat"), "lat", "fail"),
    "wrong type": (lambda f: f.with_columns(pl.col("age").cast(pl.Float64)), "age", "fail"),
    "duplicate id": (lambda f: pl.concat([f, f.head(1)]), "user_id", "fail"),
    "null id": (lambda f: f.with_columns(user_id=pl.when(spread(1)).then(None).otherwise("user_id")), "user_id", "fail"),
    "latitude out of range": (lambda f: f.with_columns(lat=pl.when(spread(2)).then(123.0).otherwise("lat")), "lat", "quarantine"),
    "missing lon": (lambda f: f.with_columns(lon=pl.when(spread(1)).then(None).otherwise("lon")), "lon", "quarantine"),
    "age out of range": (lambda f: f.with_columns(age=pl.when(spread(3)).then(5).otherwise("age")), "age", "warn"),
}


@pytest.mark.parametrize("defect", USER_DEFECTS)
def test_the_users_suite_catches(defect, world):
    inject, column, policy = USER_DEFECTS[defect]
    broken = inject(world.users)
    check_policy(run_suite(broken, suites.users_suite()), broken, column, policy)


EVENT_DEFECTS = {
    # 280 events: a quarantine of 1% takes at most 2 of them
    "duplicate id": (lambda f: pl.concat([f, f.head(1)]), "event_id", "fail"),
    "null id": (lambda f: f.with_columns(event_id=pl.when(spread(1)).then(None).otherwise("event_id")), "event_id", "fail"),
    "price negative": (lambda f: f.with_columns(price=pl.when(spread(2)).then(-5.0).otherwise("price")), "price", "quarantine"),
    "capacity 0": (lambda f: f.with_columns(capacity=pl.when(spread(1)).then(0).otherwise("capacity")), "capacity", "quarantine"),
    "start before it went on sale": (
        lambda f: f.with_columns(start_ts=pl.when(spread(2)).then(pl.col("created_ts") - timedelta(days=1)).otherwise("start_ts")),
        "start_ts", "quarantine"),
    "missing category": (lambda f: f.with_columns(category=pl.when(spread(1)).then(None).otherwise("category")), "category",
                         "quarantine"),
    "missing description": (lambda f: f.with_columns(description=pl.when(spread(2)).then(None).otherwise("description")),
                            "description", "warn"),
}


@pytest.mark.parametrize("defect", EVENT_DEFECTS)
def test_the_events_suite_catches(defect, world):
    inject, column, policy = EVENT_DEFECTS[defect]
    broken = inject(world.events)
    check_policy(run_suite(broken, suites.events_suite()), broken, column, policy)


FRIENDSHIP_DEFECTS = {
    "unknown user": (lambda f: f.with_columns(user_id=pl.when(spread(3)).then(pl.lit("ghost")).otherwise("user_id")), "user_id",
                     "quarantine"),
    "null friend_id": (lambda f: f.with_columns(friend_id=pl.when(spread(1)).then(None).otherwise("friend_id")), "friend_id", "fail"),
}


@pytest.mark.parametrize("defect", FRIENDSHIP_DEFECTS)
def test_the_friendships_suite_catches(defect, world):
    inject, column, policy = FRIENDSHIP_DEFECTS[defect]
    broken = inject(world.friendships)
    check_policy(run_suite(broken, suites.friendships_suite(world.users["user_id"])), broken, column, policy)


INTERACTION_DEFECTS = {
    # defects of the raw interactions, joined with the events' created_ts afterwards as the raw asset does
    "missing column": (lambda f: f.drop("kind"), "kind", "fail"),
    "wrong type": (lambda f: f.with_columns(pl.col("ts").dt.replace_time_zone(None)), "ts", "fail"),
    "null id": (lambda f: f.with_columns(user_id=pl.when(spread(2)).then(None).otherwise("user_id")), "user_id", "fail"),
    "duplicate interaction": (lambda f: pl.concat([f, f.head(3)]), "compound_columns_to_be_unique", "fail"),
    "duplicate invitation": (lambda f: pl.concat([f, f.filter(pl.col("kind") == "invite").head(1)]),
                             "compound_columns_to_be_unique", "fail"),
    "unknown kind": (lambda f: f.with_columns(kind=pl.when(spread(4)).then(pl.lit("purchase")).otherwise("kind")), "kind",
                     "quarantine"),
    "unknown user": (lambda f: f.with_columns(user_id=pl.when(spread(5)).then(pl.lit("ghost")).otherwise("user_id")), "user_id",
                     "quarantine"),
    "unknown event": (lambda f: f.with_columns(event_id=pl.when(spread(3)).then(pl.lit("ghost")).otherwise("event_id")),
                      "event_id", "quarantine"),
    "unknown invitee": (lambda f: f.with_columns(invitee_id=pl.when(_first_invites(2)).then(pl.lit("ghost")).otherwise("invitee_id")),
                        "invitee_id", "quarantine"),
}


@pytest.mark.parametrize("defect", INTERACTION_DEFECTS)
def test_the_interactions_suite_catches(defect, world):
    inject, column, policy = INTERACTION_DEFECTS[defect]
    broken = _interactions_frame(world, inject(world.interactions))
    check_policy(run_suite(broken, suites.interactions_suite(world.users["user_id"], world.events["event_id"])), broken, column, policy)


def test_an_interaction_before_its_event_went_on_sale_is_quarantined(world):
    frame = _interactions_frame(world)
    broken = frame.with_columns(ts=pl.when(spread(2)).then(pl.col("created_ts") - timedelta(days=1)).otherwise("ts"))
    check_policy(run_suite(broken, suites.interactions_suite(world.users["user_id"], world.events["event_id"])), broken, "ts",
           "quarantine")


def test_many_bad_rows_are_more_than_a_quarantine_may_take(world):
    broken = _interactions_frame(world).with_columns(
        kind=pl.when(pl.int_range(pl.len()) % 20 == 0).then(pl.lit("purchase")).otherwise("kind"))
    result = run_suite(broken, suites.interactions_suite(world.users["user_id"], world.events["event_id"]))
    assert not result.success and "kind" in result.summary()


def test_the_readme_states_every_raw_expectation_with_its_policy():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    ids = pl.Series([], dtype=pl.String)
    table = policy_markdown([("users", suites.users_suite()), ("events", suites.events_suite()),
                             ("friendships", suites.friendships_suite(ids)), ("interactions", suites.interactions_suite(ids, ids))])
    assert table in readme, f"the README's policy table of event_recommendation is not the suites':\n{table}"
