"""The news feed's raw-input contract: each kind of defect in users, friendships, posts, impressions, reactions and
dwell, and what its policy does."""

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from expectations import news_feed as suites
from expectations.runner import policy_markdown, run_suite
from models.news_feed.simulator import SimulationConfig, simulate
from tests.data.defects import check_policy, spread


@pytest.fixture(scope="module")
def world():
    return simulate(SimulationConfig(n_days=8, n_users=600, sessions_per_day=150))


def _impressions(world, impressions=None):
    """The impressions as the raw asset validates them: with the post's created_ts joined on."""
    frame = world.impressions if impressions is None else impressions
    return frame.join(world.posts.select("post_id", "created_ts"), on="post_id", how="left", maintain_order="left")


def _reactions(world, reactions=None):
    """The reactions as the raw asset validates them: with the impression's time joined on."""
    frame = world.reactions if reactions is None else reactions
    return frame.join(world.impressions.select("impression_id", shown_ts="ts"), on="impression_id", how="left",
                      maintain_order="left")


DEFECTS = {
    # table: {defect: (inject, column named by the report, policy)}
    "users": {
        "missing column": (lambda f: f.drop("joined_ts"), "joined_ts", "fail"),
        "wrong type": (lambda f: f.with_columns(pl.col("age").cast(pl.Float64)), "age", "fail"),
        "duplicate id": (lambda f: pl.concat([f, f.head(1)]), "user_id", "fail"),
        "null id": (lambda f: f.with_columns(user_id=pl.when(spread(1)).then(None).otherwise("user_id")), "user_id", "fail"),
        "age out of range": (lambda f: f.with_columns(age=pl.when(spread(3)).then(5).otherwise("age")), "age", "warn"),
    },
    "friendships": {
        "unknown user": (lambda f: f.with_columns(friend_id=pl.when(spread(3)).then(pl.lit("ghost")).otherwise("friend_id")),
                         "friend_id", "quarantine"),
        "unknown kind": (lambda f: f.with_columns(kind=pl.when(spread(3)).then(pl.lit("cousin")).otherwise("kind")), "kind",
                         "quarantine"),
        "null user_id": (lambda f: f.with_columns(user_id=pl.when(spread(1)).then(None).otherwise("user_id")), "user_id", "fail"),
    },
    "posts": {
        "duplicate id": (lambda f: pl.concat([f, f.head(1)]), "post_id", "fail"),
        "unknown author": (lambda f: f.with_columns(author_id=pl.when(spread(2)).then(pl.lit("ghost")).otherwise("author_id")),
                           "author_id", "quarantine"),
        "unknown media": (lambda f: f.with_columns(media=pl.when(spread(2)).then(pl.lit("hologram")).otherwise("media")),
                          "media", "quarantine"),
        "missing text": (lambda f: f.with_columns(text=pl.when(spread(2)).then(None).otherwise("text")), "text", "warn"),
    },
    "dwell": {
        "duplicate impression": (lambda f: pl.concat([f, f.head(1)]), "impression_id", "fail"),
        "negative seconds": (lambda f: f.with_columns(seconds=pl.when(spread(3)).then(-4.0).otherwise("seconds")), "seconds",
                             "quarantine"),
        "unknown impression": (lambda f: f.with_columns(  # distinct ghosts: one dwell per impression still holds
            impression_id=pl.when(spread(2)).then(pl.concat_str(pl.lit("ghost-"), pl.int_range(pl.len()).cast(pl.String)))
            .otherwise("impression_id")), "impression_id", "quarantine"),
    },
}


def _suite(world, table: str):
    users, impressions = world.users["user_id"], world.impressions["impression_id"]
    return {"users": suites.users_suite(), "friendships": suites.friendships_suite(users),
            "posts": suites.posts_suite(users), "dwell": suites.dwell_suite(impressions)}[table]


@pytest.mark.parametrize("table, defect", [(t, d) for t, defects in DEFECTS.items() for d in defects])
def test_the_suite_catches(world, table, defect):
    inject, column, policy = DEFECTS[table][defect]
    broken = inject(getattr(world, table))
    check_policy(run_suite(broken, _suite(world, table)), broken, column, policy)


IMPRESSION_DEFECTS = {
    "missing column": (lambda f: f.drop("position"), "position", "fail"),
    "wrong type": (lambda f: f.with_columns(pl.col("ts").dt.replace_time_zone(None)), "ts", "fail"),
    "duplicate id": (lambda f: pl.concat([f, f.head(2)]), "impression_id", "fail"),
    "null post": (lambda f: f.with_columns(post_id=pl.when(spread(1)).then(None).otherwise("post_id")), "post_id", "fail"),
    "position 0": (lambda f: f.with_columns(position=pl.when(spread(3)).then(0).otherwise("position")), "position", "quarantine"),
    "unknown user": (lambda f: f.with_columns(user_id=pl.when(spread(3)).then(pl.lit("ghost")).otherwise("user_id")), "user_id",
                     "quarantine"),
    "shown before it was written": (lambda f: f.with_columns(ts=pl.when(spread(2)).then(pl.col("ts") - timedelta(days=30))
                                                             .otherwise("ts")), "ts", "quarantine"),
    "missing device": (lambda f: f.with_columns(device=pl.when(spread(2)).then(None).otherwise("device")), "device", "warn"),
}


@pytest.mark.parametrize("defect", IMPRESSION_DEFECTS)
def test_the_impressions_suite_catches(world, defect):
    inject, column, policy = IMPRESSION_DEFECTS[defect]
    broken = _impressions(world, inject(world.impressions))
    check_policy(run_suite(broken, suites.impressions_suite(world.users["user_id"], world.posts["post_id"])), broken, column, policy)


REACTION_DEFECTS = {
    "duplicate reaction": (lambda f: pl.concat([f, f.head(2)]), "compound_columns_to_be_unique", "fail"),
    "null time": (lambda f: f.with_columns(ts=pl.when(spread(1)).then(None).otherwise("ts")), "ts", "fail"),
    "unknown reaction": (lambda f: f.with_columns(reaction=pl.when(spread(3)).then(pl.lit("wow")).otherwise("reaction")),
                         "reaction", "quarantine"),
    "unknown impression": (lambda f: f.with_columns(impression_id=pl.when(spread(2)).then(pl.lit("ghost")).otherwise("impression_id")),
                           "impression_id", "quarantine"),
    "before its impression": (lambda f: f.with_columns(ts=pl.when(spread(2)).then(pl.col("ts") - timedelta(hours=3)).otherwise("ts")),
                              "ts", "quarantine"),
}


@pytest.mark.parametrize("defect", REACTION_DEFECTS)
def test_the_reactions_suite_catches(world, defect):
    inject, column, policy = REACTION_DEFECTS[defect]
    broken = _reactions(world, inject(world.reactions))
    check_policy(run_suite(broken, suites.reactions_suite(world.impressions["impression_id"])), broken, column, policy)


def test_many_bad_rows_are_more_than_a_quarantine_may_take(world):
    broken = _reactions(world).with_columns(
        reaction=pl.when(pl.int_range(pl.len()) % 20 == 0).then(pl.lit("wow")).otherwise("reaction"))
    result = run_suite(broken, suites.reactions_suite(world.impressions["impression_id"]))
    assert not result.success and "reaction" in result.summary()


def test_the_readme_states_every_raw_expectation_with_its_policy():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    ids = pl.Series([], dtype=pl.String)
    table = policy_markdown([("users", suites.users_suite()), ("friendships", suites.friendships_suite(ids)),
                             ("posts", suites.posts_suite(ids)), ("impressions", suites.impressions_suite(ids, ids)),
                             ("reactions", suites.reactions_suite(ids)), ("dwell", suites.dwell_suite(ids))])
    assert table in readme, f"the README's policy table of news_feed is not the suites':\n{table}"
